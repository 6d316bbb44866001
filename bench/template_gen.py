"""Template-style news for the benchmarks: the way wire news is written, and the hard case for dedupe.

Items are 2-4 sentences drawn from a few dozen sentence templates (English and Russian) with names,
places and numbers filled in; about 2% of items carry an on-topic sentence; about 4% are syndicated
copies of a shared wire story (same sentences, a credit line appended), so near-duplicate clusters are
real. Boilerplate sentences put many unrelated posts into the same LSH bands: that is the point.

Pure and seeded (no I/O, no monitor imports): the same arguments give the same bytes in every process.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from xml.sax.saxutils import escape

NAMES_EN = ["John Miller", "Anna Petrova", "David Chen", "Maria Lopez", "Aidar Nurlanov", "Sarah Kim",
            "Peter Novak", "Elena Smirnova", "Omar Haddad", "Laura Weiss", "Timur Sadykov", "James O'Neil"]  # fmt: skip
NAMES_RU = ["Иван Петров", "Анна Смирнова", "Сергей Козлов", "Мария Иванова", "Айдар Нурланов", "Ольга Попова",
            "Дмитрий Волков", "Елена Соколова", "Тимур Садыков", "Наталья Морозова", "Алексей Лебедев"]  # fmt: skip
CITIES_EN = ["Astana", "Almaty", "Shymkent", "Karaganda", "Aktobe", "Pavlodar", "Kostanay", "Atyrau", "Oral"]
CITIES_RU = ["Астане", "Алматы", "Шымкенте", "Караганде", "Актобе", "Павлодаре", "Костанае", "Атырау", "Уральске"]
ORGS_EN = ["the ministry", "the city council", "the regional akimat", "the central bank", "the port authority",
           "the railway company", "the health department", "the statistics bureau"]  # fmt: skip
ORGS_RU = ["министерство", "городской маслихат", "акимат области", "национальный банк", "управление здравоохранения",
           "бюро статистики", "железнодорожная компания", "комитет по делам молодёжи"]  # fmt: skip
THINGS_EN = ["schools", "bus routes", "housing units", "hospital beds", "kilometres of road", "jobs", "permits"]
THINGS_RU = ["школ", "автобусных маршрутов", "квартир", "больничных коек", "километров дорог", "рабочих мест"]
DAYS_EN = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DAYS_RU = ["в понедельник", "во вторник", "в среду", "в четверг", "в пятницу", "в субботу", "в воскресенье"]

TEMPLATES_EN = [
    "{name} said on {day} that {org} would open {num} new {thing} in {city} by the end of the year.",
    "According to {org}, {num} {thing} in {city} were inspected last month.",
    "The budget of {org} for {city} grew by {pct} percent compared with last year.",
    "{name}, a spokesperson for {org}, declined to comment on the figures.",
    "Residents of {city} will be able to apply online starting {day}, {org} said.",
    "Prices for fuel in {city} rose by {pct} percent over the past week.",
    "{org} reported {num} new cases of seasonal flu in {city}.",
    "The temperature in {city} is expected to drop to minus {small} degrees on {day}.",
    "A meeting of {org} in {city} lasted {small} hours and ended without a decision.",
    "{name} was appointed deputy head of {org} in {city}.",
    "Traffic on the main avenue of {city} will be closed on {day} for repairs.",
    "The exchange rate stood at {num} tenge per dollar on {day}.",
    "Police in {city} detained {small} people after a fight near the central market.",
    "{org} plans to spend {num} million tenge on {thing} in {city}.",
    "Flights from {city} were delayed by up to {small} hours because of fog.",
    "{name} told reporters that the project in {city} is {pct} percent complete.",
    "The football club of {city} won {small} to {small2} at home on {day}.",
    "Statistics show that {pct} percent of households in {city} now use online banking.",
    "{org} has fined {small} companies in {city} for late reporting.",
    "A new terminal at the airport of {city} will handle {num} passengers a day.",
    "Water supply in parts of {city} will be cut on {day} from 9 am to {small} pm.",
    "{name} thanked the volunteers who helped clean the parks of {city}.",
    "The harvest in the region around {city} reached {num} thousand tonnes.",
    "Teachers in {city} will receive a raise of {pct} percent from next month.",
]
TEMPLATES_RU = [
    "{name} заявил {day}, что {org} откроет {num} новых {thing} в {city} до конца года.",
    "По данным ведомства, {org} проверило {num} {thing} в {city} за прошлый месяц.",
    "Бюджет на развитие в {city} вырос на {pct} процентов по сравнению с прошлым годом.",
    "{name}, представитель ведомства, отказался комментировать эти цифры.",
    "Жители в {city} смогут подать заявку онлайн {day}, сообщило {org}.",
    "Цены на топливо в {city} выросли на {pct} процентов за неделю.",
    "В {city} зарегистрировано {num} новых случаев сезонного гриппа.",
    "Температура в {city} {day} опустится до минус {small} градусов.",
    "Заседание в {city} длилось {small} часа и закончилось без решения.",
    "{name} назначен заместителем руководителя в {city}.",
    "Движение по главному проспекту в {city} {day} будет закрыто на ремонт.",
    "Курс доллара {day} составил {num} тенге.",
    "Полиция в {city} задержала {small} человек после драки у центрального рынка.",
    "На ремонт {thing} в {city} планируют потратить {num} миллионов тенге.",
    "Рейсы из {city} задержаны до {small} часов из-за тумана.",
    "{name} сообщил журналистам, что проект в {city} готов на {pct} процентов.",
    "Футбольный клуб в {city} {day} выиграл со счётом {small}:{small2}.",
    "По статистике, {pct} процентов семей в {city} пользуются онлайн-банком.",
    "{org} оштрафовало {small} компаний в {city} за несвоевременную отчётность.",
    "Новый терминал аэропорта в {city} будет обслуживать {num} пассажиров в день.",
    "Подача воды в части районов в {city} {day} будет прекращена с 9 до {small} часов.",
    "{name} поблагодарил волонтёров, которые помогли убрать парки в {city}.",
    "Урожай в районе вокруг {city} составил {num} тысяч тонн.",
    "Учителя в {city} получат прибавку в {pct} процентов со следующего месяца.",
]
TITLES_EN = ["{org} in {city}: {num} new {thing}", "{name} on the budget of {city}", "Prices in {city} up {pct}%",
             "Weather: {city} on {day}", "{city} news: {name}"]  # fmt: skip
TITLES_RU = ["{org}: {num} новых {thing}", "{name} о бюджете", "Цены в {city} выросли на {pct}%",
             "Погода в {city} {day}", "Новости: {name}"]  # fmt: skip
# The watched topics (config below) and sentences that match them: about 2% of items carry one.
TOPICAL_EN = [
    "Officials in {city} warned that separatism remains a threat, {name} said.",
    "Prosecutors charged {small} separatists in {city} on {day}.",
    "The People's Council of {city} met on {day} to discuss the new rules.",
]
TOPICAL_RU = [
    "В {city} {day} задержаны {small} сепаратистов, сообщил {name}.",
    "Прокуратура в {city} возбудила дело о сепаратизме.",
    "Народный совет в {city} {day} обсудил новые правила.",
]
TOPICS_YAML = """topics:
  separatism: [separatism, "separatist*", "сепаратизм*", "сепаратист*"]
  peoples-council: ["People's Council", "Народный совет*", "Халық кеңесі"]
  fuel-prices: ["fuel", "топливо"]
  flu: ["flu", "гриппа"]
"""
CREDITS = ["Source: Kazinform", "Источник: Kazinform", "via Tengrinews", "Источник: Tengrinews"]
ON_TOPIC = 0.02
SYNDICATED = 0.04
WIRE_STORIES = 400  # shared wire stories a syndicated item is drawn from


@dataclass(frozen=True)
class Item:
    guid: str
    title: str
    paragraphs: tuple[str, ...]
    published: datetime
    topical: bool
    story: int | None  # the wire story this item copies, if syndicated


def _fill(rng: random.Random, template: str, ru: bool) -> str:
    return template.format(
        name=rng.choice(NAMES_RU if ru else NAMES_EN),
        city=rng.choice(CITIES_RU if ru else CITIES_EN),
        org=rng.choice(ORGS_RU if ru else ORGS_EN),
        thing=rng.choice(THINGS_RU if ru else THINGS_EN),
        day=rng.choice(DAYS_RU if ru else DAYS_EN),
        num=rng.randint(10, 9999),
        pct=rng.randint(1, 99),
        small=rng.randint(2, 12),
        small2=rng.randint(0, 5),
    )


def story(rng: random.Random, *, topical: bool) -> tuple[str, tuple[str, ...]]:
    """(title, sentences) of one item: 2-4 template sentences, one of them on topic if `topical`."""
    ru = rng.random() < 0.5
    templates = TEMPLATES_RU if ru else TEMPLATES_EN
    sentences = [_fill(rng, rng.choice(templates), ru) for _ in range(rng.randint(2, 4))]
    if topical:
        topical_sentence = _fill(rng, rng.choice(TOPICAL_RU if ru else TOPICAL_EN), ru)
        sentences.insert(rng.randrange(len(sentences) + 1), topical_sentence)
    title = _fill(rng, rng.choice(TITLES_RU if ru else TITLES_EN), ru)
    return title, tuple(sentences)


def wire_story(index: int, seed: int) -> tuple[str, tuple[str, ...]]:
    rng = random.Random(f"wire-{seed}-{index}")
    return story(rng, topical=index % 10 == 0)


def items(feed: int, count: int, now: datetime, *, seed: int = 0, span: timedelta = timedelta(days=7),
          start: int = 0) -> list[Item]:  # fmt: skip
    """Items `start` .. `start + count - 1` of feed `feed`, published over `span` before `now`, newest first."""
    out = []
    for i in range(start, start + count):
        rng = random.Random(f"{seed}-{feed}-{i}")
        when = now - timedelta(seconds=rng.randint(0, int(span.total_seconds())))
        if rng.random() < SYNDICATED:
            index = rng.randrange(WIRE_STORIES)
            title, sentences = wire_story(index, seed)
            sentences = (*sentences, rng.choice(CREDITS))
            topical, copied = index % 10 == 0, index
        else:
            topical = rng.random() < ON_TOPIC
            title, sentences = story(rng, topical=topical)
            copied = None
        paragraphs = tuple(" ".join(sentences[k : k + 2]) for k in range(0, len(sentences), 2))
        out.append(Item(f"https://site{feed}.example/news/{i}", title, paragraphs, when, topical, copied))
    out.sort(key=lambda it: it.published, reverse=True)
    return out


def rss(feed: int, entries: list[Item]) -> bytes:
    """RSS 2.0 bytes for the items."""
    parts = []
    for it in entries:
        body = "".join(f"<p>{escape(p)}</p>" for p in it.paragraphs)
        parts.append(
            f"<item><title>{escape(it.title)}</title><link>{it.guid}?utm_source=rss</link><guid>{it.guid}</guid>"
            f"<pubDate>{format_datetime(it.published)}</pubDate><description>{escape(body)}</description></item>"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Site {feed}</title>'
        f"<link>https://site{feed}.example/</link><description>Site {feed}</description>{''.join(parts)}"
        "</channel></rss>"
    ).encode()


def now_utc() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
