"""config.yaml: the contract's keys, every error with its location at once, durations, sizes, secrets."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.collectors import SOURCE_MODELS
from monitor.collectors.feed import FeedSource
from monitor.collectors.html import HtmlSource
from monitor.config import MAX_PROBLEM_CHARS, CampaignConfig, NotifyChannel, load_config
from monitor.exceptions import ConfigError
from monitor.units import format_duration, parse_duration, parse_size, parse_when
from tests.conftest import NOW, REPO, make_config, run_monitor, write_config

VALID = """
store: storage/monitor.db
topics:
  separatism: [separatism, separatist*, сепаратизм*, сепаратист*]
  peoples-council:
    any: ["People's Council", "Народный совет*", "Халық кеңесі"]
    all: []
    none: ["football"]
sources:
  - name: caravanserai
    type: feed
    url: https://example.org/rss
    interval: 10m
  - name: city-news
    type: html
    url: https://example.org/news
    follow: a.headline @href
    items: article.post
    fields: {title: h2, text: .body, link: a.permalink @href, published: time @datetime, author: .author}
    comments:
      items: .comment
      fields: {text: .comment-body, author: .who, published: time @datetime, link: a.anchor @href}
  - name: some-channel
    type: telegram
    channel: somechannel
  - name: tag-kazakhstan
    type: mastodon
    url: https://mastodon.example/api/v1/timelines/tag/kazakhstan
  - name: r-kazakhstan
    type: reddit
    url: https://www.reddit.com/r/Kazakhstan/new.json
defaults:
  interval: 15m
  timeout: 30s
  max_bytes: 10MB
  per_host: 2
  user_agent: "monitor/test (+https://example.org)"
  robots: true
alerts:
  window: 1h
  baseline: 7d
  min_count: 3
  cooldown: 6h
  digest: null
  timezone: UTC
  email:
    host: localhost
    port: 25
    tls: none
    username: null
    password_env: MONITOR_SMTP_PASSWORD
    sender: monitor@example.org
    to: [analyst@example.org]
    topics: null
    kinds: null
  notify:
    - name: analysts-telegram
      url_env: MONITOR_NOTIFY_TG
      topics: [separatism]
      kinds: [spike, campaign]
  campaign:
    min_voices: 3
    within: 30m
    topics_only: true
  link_base: null
health:
  failures: 5
"""


def problems_of(tmp_path: Path, body: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        make_config(tmp_path, body)
    return info.value.problems


def test_the_contract_example_is_valid(tmp_path: Path) -> None:
    config = make_config(tmp_path, VALID)
    assert [t.name for t in config.topics] == ["separatism", "peoples-council"]
    assert config.topics[1].none == ("football",)
    assert config.store == tmp_path / "storage" / "monitor.db"
    feed = config.source("caravanserai")
    assert isinstance(feed, FeedSource)
    assert feed.interval == timedelta(minutes=10)
    assert config.source("tag-kazakhstan").interval == timedelta(minutes=15)  # from defaults
    assert feed.max_bytes == 10_000_000
    html = config.source("city-news")
    assert isinstance(html, HtmlSource)
    assert html.fields.link == "a.permalink @href"
    assert html.comments is not None and html.comments.fields.text == ".comment-body"
    assert config.alerts.email is not None and config.alerts.email.effective_port == 25
    assert config.alerts.email.topics is None and config.alerts.email.kinds is None
    assert config.alerts.notify == (
        NotifyChannel(
            name="analysts-telegram", url_env="MONITOR_NOTIFY_TG", topics=("separatism",), kinds=("spike", "campaign")
        ),
    )
    assert config.alerts.campaign == CampaignConfig(min_voices=3, within=timedelta(minutes=30), topics_only=True)
    assert config.alerts.link_base is None


def test_the_shipped_config_is_valid() -> None:
    config = load_config(REPO / "config.yaml", source_types=SOURCE_MODELS)
    assert {t.name for t in config.topics} == {"separatism", "peoples-council"}
    assert len(config.sources) >= 5
    assert config.store == REPO / "storage" / "monitor.db"


def test_every_error_is_reported_at_once_with_its_location(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
        store: x.db
        bogus_key: 1
        topics:
          separatism: [separatism]
        sources:
          - name: a
            type: feed
            url: https://example.org/rss
            interval: 5 parsecs
          - name: B!
            type: feed
            url: ftp://example.org/rss
          - name: c
            type: feed
            url: https://example.org/c
            intervall: 10m
        alerts:
          window: 1h
          min_count: zero
    """,
    )
    text = "\n".join(problems)
    assert "bogus_key (line 3): unknown key" in text
    assert "sources[0].interval (line 10)" in text and "5 parsecs" in text
    assert "sources[1].name (line 11)" in text
    assert "sources[1].url (line 13)" in text
    assert "sources[2].intervall (line 17): unknown key" in text
    assert "alerts.min_count (line 20)" in text
    assert len(problems) == 6


def test_missing_keys_and_wrong_shapes(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
        topics: []
        sources:
          - name: a
            type: feed
          - just-a-string
    """,
    )
    text = "\n".join(problems)
    assert "topics (line 2)" in text
    assert "sources[0].url (line 4): required key is missing" in text
    assert "sources[1] (line 6): expected a mapping" in text


def test_unknown_source_type_names_the_supported_ones(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - {name: a, type: instagram, url: "https://instagram.com/x"}
    """,
    )
    assert len(problems) == 1
    assert "sources[0].type" in problems[0] and "'instagram'" in problems[0]
    for kind in ("feed", "html", "telegram", "mastodon", "reddit"):
        assert kind in problems[0]


def test_a_source_group_is_a_name_and_defaults_to_none(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - {name: outlet, type: feed, url: "https://e.org/1"}
          - {name: outlet-mirror, type: feed, url: "https://e.org/2", group: outlet}
        """,
    )
    assert [s.group for s in config.sources] == [None, "outlet"]
    problems = problems_of(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - {name: a, type: feed, url: "https://e.org/1", group: "Outlet Network!"}
    """,
    )
    assert len(problems) == 1 and "sources[0].group" in problems[0], problems


def test_a_group_naming_a_source_of_another_group_is_refused(tmp_path: Path) -> None:
    """mirror -> main -> network would count the mirror apart from both: the config says which group to write."""
    problems = problems_of(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - {name: main, type: feed, url: "https://e.org/1", group: network}
          - {name: mirror, type: feed, url: "https://e.org/2", group: main}
          - {name: other, type: feed, url: "https://e.org/3", group: network}
    """,
    )
    assert len(problems) == 1, problems
    assert "sources[1].group" in problems[0] and "group: network" in problems[0], problems


def test_duplicate_source_names_and_duplicate_yaml_keys(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - {name: a, type: feed, url: "https://e.org/1"}
          - {name: a, type: feed, url: "https://e.org/2"}
        defaults:
          interval: 10m
          interval: 20m
    """,
    )
    text = "\n".join(problems)
    assert "sources[1].name" in text and "duplicate source name" in text
    assert "defaults.interval (line 8): duplicate key" in text


def test_bad_terms_are_located(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
        topics:
          t:
            any: [good, "*", ""]
            none: ["a*"]
        sources: []
    """,
    )
    text = "\n".join(problems)
    assert "topics.t.any[1]" in text and "topics.t.any[2]" in text and "topics.t.none[0]" in text


def test_transliterate_is_a_topic_option_and_must_be_a_boolean(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        topics:
          council: {any: ["Халық кеңес*"], transliterate: true}
          plain: [word]
        sources: []
    """,
    )
    assert [(t.name, t.transliterate) for t in config.topics] == [("council", True), ("plain", False)]
    problems = problems_of(tmp_path, 'topics:\n  t: {any: [x], transliterate: "yes"}\nsources: []\n')
    assert any(p.startswith("topics.t.transliterate") and "true or false" in p for p in problems), problems


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "topics:\n  t: [x\nsources: []\n")
    assert len(problems) == 1 and "line" in problems[0] and "YAML" in problems[0]


def test_secrets_are_not_read_from_the_file(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
        topics: {t: [x]}
        sources: []
        alerts:
          email: {host: h, sender: a@b.org, to: [c@d.org], password: hunter2}
    """,
    )
    assert problems == ["alerts.email.password (line 5): unknown key"]


def test_short_interval_is_accepted_with_a_warning(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - {name: fast, type: feed, url: "https://e.org/f", interval: 1s}
    """,
    )
    assert config.source("fast").interval == timedelta(seconds=1)
    assert len(config.warnings) == 1 and "sources[0].interval" in config.warnings[0]
    local = make_config(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - {name: fast, type: feed, url: "http://127.0.0.1:8080/f", interval: 1s}
          - {name: lan, type: feed, url: "http://192.168.1.5/f", interval: 5s}
    """,
    )
    assert local.warnings == ()  # a host of your own may be polled as often as you like


def test_unquoted_digest_time_and_timezone(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        topics: {t: [x]}
        sources: []
        alerts: {digest: 08:00, timezone: Asia/Almaty}
    """,
    )
    assert config.alerts.digest == "08:00"
    problems = problems_of(
        tmp_path,
        """
        topics: {t: [x]}
        sources: []
        alerts: {digest: "25:00", timezone: Mars/Olympus}
    """,
    )
    assert len(problems) == 2


def test_load_config_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "nope.yaml", source_types=SOURCE_MODELS)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("1h", 3600),
        ("7d", 604800),
        ("1h30m", 5400),
        ("2w", 1209600),
        (45, 45),
        ("500ms", 0.5),
    ],
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("bad", ["", "10", "ten minutes", "5 parsecs", "-1h", "0s", True])
def test_bad_durations(bad: object) -> None:
    if bad == "10":  # a bare number is seconds
        assert parse_duration(bad).total_seconds() == 10
        return
    with pytest.raises(ValueError):
        parse_duration(bad)


@pytest.mark.parametrize("huge", ["36501d", "99999999d", "999999999999999999999d", 10**12])
def test_a_duration_past_100_years_is_refused_not_an_overflow_later(huge: object) -> None:
    assert parse_duration("36500d") == timedelta(days=36_500)
    with pytest.raises(ValueError, match="at most 36500d"):
        parse_duration(huge)


def test_a_huge_since_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    config = write_config(tmp_path, "store: x.db\ntopics: {t: [x]}\nsources: []\n")
    assert run_monitor(config, "poll").returncode == 0  # a store to search
    result = run_monitor(config, "search", "--since", "99999999d", "x")
    assert result.returncode == 2, result.stderr
    assert "at most 36500d" in result.stderr and "Traceback" not in result.stderr


@given(st.integers(min_value=1, max_value=10**8))
def test_format_duration_round_trips(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    assert parse_duration(format_duration(delta)) == delta


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("10MB", 10_000_000),
        ("512KiB", 524_288),
        ("1GB", 10**9),
        (2000, 2000),
        ("1.5MB", 1_500_000),
        ("300 kb", 300_000),
    ],
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["10 parsecs", "-5MB", "0", "MB"])
def test_bad_sizes(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


def test_since_until_arguments() -> None:
    assert parse_when("30d", NOW) == NOW - timedelta(days=30)
    assert parse_when("2026-02-01", NOW).isoformat() == "2026-02-01T00:00:00+00:00"
    assert parse_when("2026-02-01T10:00:00+06:00", NOW).hour == 4
    with pytest.raises(ValueError):
        parse_when("last tuesday", NOW)


def test_robots_applies_to_page_crawlers_and_only_on_request_to_apis(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - {name: f, type: feed, url: "https://e.org/f"}
          - {name: r, type: reddit, url: "https://www.reddit.com/r/x/new.json"}
          - {name: r2, type: reddit, url: "https://www.reddit.com/r/y/new.json", robots: true}
          - {name: f2, type: feed, url: "https://e.org/g", robots: false}
    """,
    )
    assert [config.source(n).robots for n in ("f", "r", "r2", "f2")] == [True, False, True, False]


ROUTED = """
topics: {separatism: [x], council: [y]}
sources: []
alerts:
"""


def test_alert_routing_keys_default_to_everything_and_campaigns_on(tmp_path: Path) -> None:
    alerts = make_config(tmp_path, ROUTED + "  email: {host: h, sender: a@b.org, to: c@d.org}\n").alerts
    assert alerts.email is not None and (alerts.email.topics, alerts.email.kinds) == (None, None)
    assert alerts.notify == ()
    assert alerts.campaign == CampaignConfig(min_voices=4, within=timedelta(minutes=10), topics_only=True)
    assert alerts.link_base is None
    assert make_config(tmp_path, ROUTED + "  campaign: null\n  notify: null\n").alerts.campaign is None
    partial = make_config(tmp_path, ROUTED + "  campaign: {min_voices: 5}\n").alerts.campaign
    assert partial == CampaignConfig(min_voices=5, within=timedelta(minutes=10), topics_only=True)


def test_email_routing_and_every_to_address_are_validated(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        ROUTED
        + """  email:
    host: h
    sender: a@b.org
    to: [ok@x.org, "not an address", ""]
    topics: [separatism, nosuch]
    kinds: [spike, bogus]
""",
    )
    assert problems == [
        "alerts.email.topics[1] (line 9): unknown topic 'nosuch' (known: council, separatism)",
        "alerts.email.kinds[1] (line 10): unknown alert kind 'bogus' (kinds: spike, campaign, health, digest)",
        "alerts.email.to[1] (line 8): 'not an address' is not an email address",
        "alerts.email.to[2] (line 8): '' is not an email address",
    ]
    email = make_config(tmp_path, ROUTED + "  email: {host: h, sender: a@b.org, to: [c@d.org], kinds: [health]}\n")
    assert email.alerts.email is not None and email.alerts.email.kinds == ("health",)


def test_notify_channels_are_validated_all_at_once(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        ROUTED
        + """  notify:
    - {name: tg, url_env: MONITOR_NOTIFY_TG, topics: [separatism], kinds: [spike, campaign]}
    - {name: tg, url_env: "tgram://bottoken/chat"}
    - {name: Bad!, url_env: "1X"}
    - {name: email, url_env: X, topics: []}
    - {name: ok, url_env: X, topics: [nosuch], kinds: [sms]}
    - {name: no-url}
""",
    )
    assert problems == [
        "alerts.notify[1].url_env (line 7): give the name of an environment variable that holds the URL, not the URL "
        "(it carries tokens)",
        "alerts.notify[2].name (line 8): 'Bad!': use lower-case letters, digits, '-' and '_' only",
        "alerts.notify[2].url_env (line 8): '1X' is not an environment variable name (letters, digits, '_'; "
        "e.g. MONITOR_NOTIFY)",
        "alerts.notify[3].topics (line 9): an empty list would route nothing here: list some, or leave the key out "
        "for all",
        "alerts.notify[3].name (line 9): 'email' is the channel of alerts.email; give this one another name",
        "alerts.notify[4].topics[0] (line 10): unknown topic 'nosuch' (known: council, separatism)",
        "alerts.notify[4].kinds[0] (line 10): unknown alert kind 'sms' (kinds: spike, campaign, health, digest)",
        "alerts.notify[5].url_env (line 11): required key is missing",
        "alerts.notify[1].name (line 7): duplicate channel name 'tg' (also alerts.notify[0])",
    ]


def test_notify_channels_in_order_with_their_routes(tmp_path: Path) -> None:
    body = ROUTED + "  notify:\n    - {name: all, url_env: A}\n    - {name: some, url_env: B, topics: [council]}\n"
    channels = make_config(tmp_path, body).alerts.notify
    assert [(c.name, c.url_env, c.topics, c.kinds) for c in channels] == [
        ("all", "A", None, None),
        ("some", "B", ("council",), None),
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("{min_voices: 1}", "alerts.campaign.min_voices (line 5): expected a whole number >= 2, got 1"),
        ("{within: 5 parsecs}", "alerts.campaign.within (line 5): expected a duration"),
        ("{topics_only: maybe}", "alerts.campaign.topics_only (line 5): expected true or false, got 'maybe'"),
        ("{voices: 3}", "alerts.campaign.voices (line 5): unknown key"),
        ("yes", "alerts.campaign (line 5): expected a mapping, got true"),
    ],
)
def test_campaign_settings_are_validated(tmp_path: Path, value: str, problem: str) -> None:
    problems = problems_of(tmp_path, ROUTED + f"  campaign: {value}\n")
    assert len(problems) == 1 and problems[0].startswith(problem), problems


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://monitor.internal:8001", "http://monitor.internal:8001"),
        ("https://desk.example.org/monitor/", "https://desk.example.org/monitor"),
        ("ftp://x", "not an http(s) address"),
        ("monitor.internal:8001", "not an http(s) address"),
        ("http://x:99999", "the port is not a number from 1 to 65535"),
        ("http://x/?a=1", "without ?query or #fragment"),
        ("42", "not an http(s) address"),
    ],
)
def test_link_base_is_an_http_address(tmp_path: Path, value: str, expected: str) -> None:
    body = ROUTED + f"  link_base: {value}\n"
    if expected.startswith("http"):
        assert make_config(tmp_path, body).alerts.link_base == expected
    else:
        problems = problems_of(tmp_path, body)
        assert len(problems) == 1 and problems[0].startswith("alerts.link_base (line 5)") and expected in problems[0]


def test_allow_private_defaults_to_true_and_can_be_turned_off(tmp_path: Path) -> None:
    config = make_config(
        tmp_path,
        """
        topics: {t: [x]}
        defaults: {allow_private: false}
        sources:
          - {name: f, type: feed, url: "https://e.org/f"}
          - {name: mine, type: feed, url: "http://10.0.0.5/f", allow_private: true}
    """,
    )
    assert [config.source(n).allow_private for n in ("f", "mine")] == [False, True]
    assert (
        make_config(tmp_path, 'topics: {t: [x]}\nsources: [{name: f, type: feed, url: "https://e.org/"}]')
        .sources[0]
        .allow_private
    )


def test_a_duplicate_name_is_reported_with_the_other_errors_in_one_run(tmp_path: Path) -> None:
    """Before, a duplicate was found only once every other error in that source was fixed."""
    problems = problems_of(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - {name: news, type: feed, url: "https://e.org/1"}
          - {name: news, type: feed, url: "ftp://e.org/2", interval: soon}
          - {name: news, type: html, url: "https://e.org/3", items: "article[[[", fields: {title: h2}}
    """,
    )
    assert problems[:2] == [
        "sources[1].name (line 5): duplicate source name 'news' (also sources[0])",
        "sources[2].name (line 6): duplicate source name 'news' (also sources[0])",
    ]
    text = "\n".join(problems)
    assert "sources[1].url (line 5)" in text and "sources[1].interval (line 5)" in text
    assert "sources[2].items (line 6): invalid CSS selector 'article[[['" in text
    assert len(problems) == 5


def test_invalid_css_selectors_are_config_errors_with_their_lines(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - name: city
            type: html
            url: https://e.org/news
            items: article[[[
            follow: "a.headline[ @href"
            next: "a.next"
            fields:
              title: "h2 >"
              text: .body
              link: "@id"
              author: ":nosuch(x) @title"
            comments:
              items: "li::before"
              fields: {text: .c}
    """,
    )
    assert sorted(problems) == [
        "sources[0].comments.items (line 16): invalid CSS selector 'li::before'",
        "sources[0].fields.author (line 14): invalid CSS selector ':nosuch(x)'",
        "sources[0].fields.title (line 11): invalid CSS selector 'h2 >'",
        "sources[0].follow (line 8): invalid CSS selector 'a.headline['",
        "sources[0].items (line 7): invalid CSS selector 'article[[['",
    ]


def test_a_selector_spec_of_only_an_attribute_reads_the_item_itself_but_items_need_css(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        """
        topics: {t: [x]}
        sources:
          - {name: c, type: html, url: "https://e.org/", items: "@id", fields: {title: h2, link: "@id"}}
    """,
    )
    assert problems == ["sources[0].items (line 4): empty CSS selector '@id'"]


@pytest.mark.parametrize("written", ["somechannel", "@somechannel", " @somechannel "])
def test_a_telegram_channel_may_be_written_with_its_at_sign(tmp_path: Path, written: str) -> None:
    config = make_config(tmp_path, f'topics: {{t: [x]}}\nsources: [{{name: tg, type: telegram, channel: "{written}"}}]')
    assert getattr(config.sources[0], "channel", None) == "somechannel"


def test_a_bad_telegram_channel_gets_a_plain_message(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, 'topics: {t: [x]}\nsources: [{name: tg, type: telegram, channel: "@a b"}]')
    assert problems == [
        "sources[0].channel (line 2): '@a b' is not a channel name: give the name from t.me/NAME "
        "(3 to 64 letters, digits or _, with or without a leading @)"
    ]


def test_monitor_check_reports_an_invalid_selector_with_its_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from monitor.cli import main

    path = tmp_path / "config.yaml"
    path.write_text(
        "topics: {t: [x]}\nsources:\n  - name: city\n    type: html\n    url: https://e.org/\n"
        "    items: article[[[\n    fields: {title: h2}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["--config", str(path), "check"])
    assert result.exit_code == 2
    assert "sources[0].items (line 6): invalid CSS selector 'article[[['" in result.output


POSTGRES_BODY = """
store: {store}
topics: {{t: [x]}}
sources: [{{name: a, type: feed, url: "https://example.org/rss"}}]
"""


def test_a_postgresql_url_selects_that_store_and_never_holds_a_password(tmp_path: Path) -> None:
    from monitor.types import StoreURL

    config = make_config(tmp_path, POSTGRES_BODY.format(store="postgresql://monitor@db.example.org/monitor"))
    assert config.store == StoreURL("postgresql://monitor@db.example.org/monitor")
    for bad, said in (
        ("postgresql://monitor:secret@db.example.org/monitor", "MONITOR_STORE_PASSWORD"),
        ('"postgresql://db.example.org/monitor?password=secret"', "MONITOR_STORE_PASSWORD"),
        ("postgresql://db.example.org:port/monitor", "not a usable PostgreSQL URL"),
    ):
        with pytest.raises(ConfigError) as failed:
            make_config(tmp_path, POSTGRES_BODY.format(store=bad))
        assert failed.value.problems[0].startswith("store (line 2):") and said in failed.value.problems[0]
        assert "secret" not in str(failed.value)


def test_a_huge_value_gives_a_short_problem_that_still_names_its_place(tmp_path: Path) -> None:
    """A page pasted where a name, a duration or a choice goes: each problem quotes the start of it, not all of it."""
    big = "A" * 1_000_000
    problems = problems_of(
        tmp_path,
        f"""
        topics: {{t: [x]}}
        sources:
          - {{name: {big}, type: feed, url: "https://e.example/"}}
          - {{name: b, type: feed, url: "https://e.example/", interval: {big}}}
        alerts:
          email: {{host: h, sender: a@b.org, to: a@b.org, tls: {big}}}
    """,
    )
    found = {p.split(" (line")[0]: p for p in problems}
    assert sorted(found) == ["alerts.email.tls", "sources[0].name", "sources[1].interval"]
    assert all(len(p) <= MAX_PROBLEM_CHARS + 40 for p in problems), [len(p) for p in problems]  # + its location
    assert "'AAAA" in found["sources[0].name"] and "characters in all" in found["sources[0].name"]
    assert "expected a duration" in found["sources[1].interval"]
    assert "expected one of: none, starttls, ssl (got 'AAAA" in found["alerts.email.tls"]


def test_the_fetch_logs_retention_is_a_duration_of_a_day_or_more(tmp_path: Path) -> None:
    body = "topics: {t: [x]}\nsources: []\nhealth:\n  fetch_log: KEPT\n"
    assert make_config(tmp_path, body.replace("KEPT", "7d")).health.fetch_log == timedelta(days=7)
    assert make_config(tmp_path, "topics: {t: [x]}\nsources: []\n").health.fetch_log == timedelta(days=90)
    problems = problems_of(tmp_path, body.replace("KEPT", "2h"))
    assert len(problems) == 1 and problems[0].startswith("health"), problems
    assert "fetch_log must be at least 1d" in problems[0]
    assert "health.fetch_log (line 4)" in problems_of(tmp_path, body.replace("KEPT", "a week"))[0]
