"""The words of the demo's fictional world: everyday news templates and the story of one spike.

Pure data: no I/O. Every outlet, channel, person and event here is invented for `monitor demo`; the
story's posts carry a "[demo]" / "[демо]" mark so that a forwarded screenshot cannot pass for news.

Templates fill `{n}` (100-999), `{m}` (2-9), `{a}` and `{b}` (0-5, a score) and `{r}` (a tenge rate).
Ordinary texts avoid every topic term of the demo config; the story's texts are what the topics catch.
Story times are minutes before "now"; the spike is everything under 60 minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

HERALD_NAME = "North Steppe Herald (demo)"
VESTI_NAME = "Северные вести (демо)"
NEWS_NAME = "Кызылжар Ньюс (демо)"
CHANNEL_NAME = "Дала (демо)"
CHANNEL = "monitor_demo_dala"  # the Telegram channel's short name; invented, as is everything here
BANNER_RU = "Демонстрационный сайт monitor: все новости, люди и события вымышлены."
BANNER_EN = "A demonstration site for monitor: every outlet, person and event here is fictional."


@dataclass(frozen=True)
class Template:
    """An everyday news item; `key` names it in addresses."""

    key: str
    title: str
    text: str  # paragraphs separated by a blank line


@dataclass(frozen=True)
class StoryArticle:
    """A dated article of the story (feeds and the news site)."""

    outlet: str  # herald | vesti | news
    minutes_ago: int
    key: str
    title: str
    text: str
    author: str


@dataclass(frozen=True)
class StoryMessage:
    """A dated message of the story in the Telegram channel."""

    minutes_ago: int
    text: str
    forwarded_from: str | None = None


@dataclass(frozen=True)
class StoryComment:
    """A dated comment under one of the news site's story articles (`article` = its key)."""

    article: str
    minutes_ago: int
    author: str
    text: str


HERALD_AUTHORS = ("Dana Sultanova", "Mark Ivers", "Aliya Nurpeisova", "Timur Bekov")
VESTI_AUTHORS = ("Ольга Кравец", "Нурлан Жакупов", "Ирина Соколова", "Данияр Абенов")
NEWS_AUTHORS = ("Редакция", "Айгерим Сапарова", "Сергей Лим", "Жанна Оспанова")

HERALD: tuple[Template, ...] = (
    Template(
        "bus-routes",
        "Petropavlovsk adds {m} evening bus routes",
        "The city transport department said {m} routes will run until 23:00 from next week.\n\n"
        "Passengers had asked for later buses near the railway station and the university; {n} stops will "
        "also get new shelters, the department said.",
    ),
    Template(
        "night-train",
        "Night train to Astana returns to the timetable",
        "The national railway will run the night service to Astana {m} times a week. Tickets went on sale "
        "this morning, and the railway expects about {n} passengers a week on the route.",
    ),
    Template(
        "hockey",
        "Kulager win {a}-{b} at home",
        "Kulager Petropavlovsk won {a}-{b} in front of {n} fans at the city ice palace. The coach praised the "
        "young defenders and said the team would rotate the goalkeepers in the next {m} games.",
    ),
    Template(
        "grain",
        "Region's elevators hold {n} thousand tonnes of grain",
        "Grain elevators across North Kazakhstan hold about {n} thousand tonnes, the agriculture department "
        "said. Rail cars for export are booked {m} weeks ahead, traders said.",
    ),
    Template(
        "scanner",
        "Regional hospital opens a new CT scanner",
        "The regional hospital has started using a new CT scanner, cutting the wait for an appointment to "
        "{m} days. Doctors expect to examine about {n} patients a month.",
    ),
    Template(
        "water-tariff",
        "Hearing on the water tariff set for next week",
        "The city water utility wants to raise its tariff by {m} percent to pay for new pipes. Residents can "
        "comment at a public hearing; the regulator will decide within {n} hours of the hearing.",
    ),
    Template(
        "olympiad",
        "{m} local pupils reach the national olympiad final",
        "Pupils from Petropavlovsk and {m} district schools will compete in the national final in "
        "mathematics and physics. Their teachers said preparation took {n} hours of extra classes.",
    ),
    Template(
        "tenge",
        "Tenge steady at {r} per dollar",
        "The tenge traded at {r} per US dollar in morning trading at the exchange. Exchange offices in "
        "Petropavlovsk quoted rates within {m} tenge of the official one.",
    ),
    Template(
        "road-repairs",
        "Repairs close part of Internatsionalnaya Street",
        "Road crews will close {n} metres of Internatsionalnaya Street for {m} days to replace the surface. "
        "Buses will take the detour through Zhambyl Street.",
    ),
    Template(
        "museum",
        "Museum shows steppe jewellery from {m} private collections",
        "The regional museum of local history opened an exhibition of silver jewellery from {m} private "
        "collections. About {n} visitors came on the first day.",
    ),
    Template(
        "it-courses",
        "IT hub offers {m} free evening courses",
        "The city IT hub will teach programming, design and data analysis in {m} free evening courses. "
        "More than {n} people have applied so far.",
    ),
    Template(
        "flights",
        "Airport adds weekly flights to Almaty",
        "Petropavlovsk airport will add {m} weekly flights to Almaty from next month. The airline said "
        "tickets start at {n}0 tenge.",
    ),
)

VESTI: tuple[Template, ...] = (
    Template(
        "otoplenie",
        "Отопление подключили в {n} домах",
        "Городские теплосети сообщили, что отопление подано в {n} многоквартирных домов. Ещё в {m} домах "
        "идёт промывка систем.\n\nЖалобы принимают по телефону диспетчерской.",
    ),
    Template(
        "dorogi",
        "На ремонт дорог направят ещё {n} миллионов тенге",
        "Маслихат одобрил дополнительные расходы на ремонт дорог. В первую очередь обновят {m} улиц в "
        "районе рынка и выезд на трассу.",
    ),
    Template(
        "ceny",
        "Цены на хлеб в области остались прежними",
        "Стабилизационный фонд продолжит поставлять муку пекарням по фиксированной цене. Буханка "
        "социального хлеба стоит {n} тенге, сообщили в управлении предпринимательства.",
    ),
    Template(
        "urozhai",
        "Аграрии собрали {n} тысяч тонн пшеницы",
        "Урожайность в среднем по области составила {m} центнеров с гектара. Зерно хранится на {n} "
        "элеваторах, часть уже отгружена на экспорт.",
    ),
    Template(
        "khokkei",
        "«Кулагер» уступил в овертайме",
        "Петропавловский «Кулагер» проиграл со счётом {a}:{b} в овертайме. Следующий домашний матч команда "
        "сыграет через {m} дня.",
    ),
    Template(
        "teatr",
        "В драмтеатре имени Погодина — премьера",
        "Театр покажет новую постановку по рассказам Чехова. Билеты на {m} спектакля уже проданы, сообщили в кассе.",
    ),
    Template(
        "shkoly",
        "В {m} школах области откроют IT-классы",
        "В классы закупят {n} ноутбуков. Учителей информатики обучат на летних курсах.",
    ),
    Template(
        "bolnica",
        "Очередь к кардиологу сократили до {m} дней",
        "В городской поликлинике открыли ещё два кабинета кардиолога. За месяц специалисты принимают "
        "около {n} пациентов.",
    ),
    Template(
        "avtobusy",
        "На маршруты выйдут {m} новых автобусов",
        "Город получил {m} автобусов на газе. Они будут работать на маршрутах до вокзала и университета, "
        "всего на линии выходит {n} машин.",
    ),
    Template(
        "kurs",
        "Курс доллара в обменниках — {r} тенге",
        "Обменные пункты Петропавловска продают доллар по {r} тенге. Рубль подешевел на {m} тиын.",
    ),
)

NEWS: tuple[Template, ...] = (
    Template(
        "byudzhet",
        "Слушания по бюджету: депутаты обсудили расходы на дороги",
        "На публичных слушаниях горожане спросили, почему ремонт дорог на Береке снова перенесли.\n\n"
        "В акимате пообещали начать работы через {m} месяца и выделить {n} миллионов тенге.",
    ),
    Template(
        "ploshchadki",
        "В Петропавловске откроют {m} новых детских площадок",
        "Площадки появятся во дворах, где жители подали заявки через приложение. Всего заявок было {n}.",
    ),
    Template(
        "teplo",
        "Тарифы на тепло: что изменится с нового месяца",
        "Тариф вырастет на {m} процентов. В управлении ЖКХ объяснили повышение износом сетей: за год "
        "заменят {n} метров труб.",
    ),
    Template(
        "kulager",
        "«Кулагер» обыграл соперника со счётом {a}:{b}",
        "Матч посмотрели {n} зрителей. Лучшим игроком признан молодой нападающий команды.",
    ),
    Template(
        "tomograf",
        "В областной больнице заработал новый томограф",
        "Аппарат позволит обследовать до {n} пациентов в месяц. Запись идёт через регистратуру и портал "
        "электронного правительства.",
    ),
    Template(
        "trotuary",
        "На улице Конституции начался ремонт тротуаров",
        "Работы продлятся {m} недели. Пешеходов просят пользоваться временными переходами.",
    ),
    Template(
        "zerno",
        "Аграрии области: зерна на элеваторах — {n} тысяч тонн",
        "Фермеры жалуются на нехватку вагонов. В управлении сельского хозяйства обещают решить вопрос за {m} недели.",
    ),
    Template(
        "premera",
        "Драмтеатр покажет премьеру по Чехову",
        "Спектакль готовили {m} месяцев. Билеты стоят от {n} тенге.",
    ),
)

CHANNEL_TEMPLATES: tuple[Template, ...] = (
    Template("probka", "", "🚗 Пробка на Жамбыла от рынка до вокзала, объезжайте по Конституции."),
    Template("kurs", "", "💵 Курс в обменниках: доллар {r} тг, рубль {m},{a}0 тг."),
    Template("pogoda", "", "Ауа райы: ертең Петропавлда жауын-шашынсыз, жел {m} м/с."),
    Template("balabaqsha", "", "Петропавлда {m} топқа арналған жаңа балабақша ашылды."),
    Template("con", "", "В ЦОНах города очередь до {m} часов, лучше записываться онлайн."),
    Template("dtp", "", "ДТП на трассе Петропавловск — Кокшетау: пострадавших нет, движение затруднено."),
    Template("hockey", "", "🏒 «Кулагер» — {a}:{b}. Следующая игра через {m} дня, дома."),
    Template("svet", "", "⚡ Завтра с 10 до 14 отключат свет в {m} домах на Береке."),
    Template("bus", "", "Автобус №{m} снова ходит до университета."),
    Template("maslikhat", "", "Мәслихат сессиясында жол жөндеуге {n} миллион теңге бөлінді."),
    Template("vacancy", "", "Ярмарка вакансий в пятницу: {n} мест, от водителей до программистов."),
    Template("konkurs", "", "Мектеп оқушылары республикалық олимпиадада {m} жүлде алды 👏"),
)

COMMENTS: tuple[tuple[str, str], ...] = (
    ("Ерлан", "Давно пора, спасибо за новость."),
    ("Марина К.", "А что с дорогами на Береке? Третий год обещают."),
    ("Асқар", "Керемет жаңалық!"),
    ("Гость", "Опять деньги на ветер."),
    ("Светлана", "Хорошо, если сделают к осени."),
    ("Данияр", "Бұл дұрыс шешім."),
    ("Игорь П.", "Кто-нибудь знает, во сколько начало?"),
    ("Айнур", "Мы были, очень понравилось."),
    ("Петропавловец", "Цены растут, а зарплаты нет."),
    ("Гүлнар", "Рахмет, пайдалы ақпарат."),
)

# --- the story -----------------------------------------------------------------------------------------
# Copies that the store should fold into one story are made of the same words (a credit line added).

DECLARATION_RU = (
    "[демо] ДЕКЛАРАЦИЯ. Мы, Народный совет Петропавловска, объявляем о создании органа самоуправления "
    "области и призываем жителей собраться в субботу в 12:00 на центральной площади. Судьбу области должен "
    "решать её народ. Распространите среди земляков!"
)
DECLARATION_KZ = (
    "[демо] МӘЛІМДЕМЕ. Біз, Петропавл Халық кеңесі, облыс тұрғындарын сенбі күні сағат 12:00-де орталық "
    "алаңға жиналуға шақырамыз. Облыстың болашағын халық өзі шешуі тиіс. Жерлестерге таратыңыздар!"
)
DECLARATION_EN = (
    "[demo] DECLARATION. We, the People's Council of Petropavlovsk, announce the creation of a self-governing "
    "body for the region and call on residents to gather on Saturday at 12:00 in the central square. The "
    "future of the region must be decided by its people. Share this with your neighbours!"
)
WIRE_POLICE = (
    "[демо] В социальных сетях распространяется текст так называемой «декларации Народного совета "
    "Петропавловска». Авторы призывают жителей собраться в субботу на центральной площади.\n\n"
    "В департаменте полиции Северо-Казахстанской области сообщили, что публикация проверяется на признаки "
    "сепаратизма, а администраторы канала устанавливаются. Полиция просит не распространять текст."
)
WIRE_AKIM = (
    "[демо] Аким области заявил, что никакого «Народного совета» в Петропавловске не существует, а "
    "публикация в Telegram — провокация. По его словам, канал создан накануне, его авторы находятся за "
    "пределами области. Жителей просят доверять только официальным источникам."
)

STORY_ARTICLES: tuple[StoryArticle, ...] = (
    # history: the topics' usual low rate over the week
    StoryArticle(
        "herald",
        9490,
        "court-appeal",
        "Court upholds sentence in online separatism case",
        "The Supreme Court left in force a sentence handed down for posts that called for separatism. The "
        "defence said it would not appeal again.",
        "Mark Ivers",
    ),
    StoryArticle(
        "herald",
        8750,
        "old-playbook",
        "Analysts: online calls for a 'People's Council' follow an old playbook",
        "Researchers who follow regional social media say posts urging residents to form a People's Council "
        "appear every few months, usually from accounts created days earlier.\n\nSuch posts rarely reach "
        "local audiences, they said.",
        "Dana Sultanova",
    ),
    StoryArticle(
        "vesti",
        7980,
        "prigovor-astana",
        "В Астане оставили в силе приговор по делу о пропаганде сепаратизма",
        "Верховный суд не изменил приговор, вынесенный за публикации в соцсетях. Защита заявила, что больше "
        "обжаловать его не будет.",
        "Ольга Кравец",
    ),
    StoryArticle(
        "vesti",
        7330,
        "staraya-taktika",
        "Эксперты: призывы к «народным советам» в соцсетях — старая тактика",
        "Аналитики отмечают, что такие публикации появляются раз в несколько месяцев, как правило, с "
        "недавно созданных аккаунтов, и почти не находят отклика у жителей.",
        "Нурлан Жакупов",
    ),
    StoryArticle(
        "news",
        5330,
        "prigovor-petropavl",
        "Суд в Петропавловске вынес приговор за сепаратистские посты",
        "Житель города получил пять лет ограничения свободы за публикации в социальных сетях.\n\nСуд учёл "
        "признание вины и то, что посты удалены.",
        "Сергей Лим",
    ),
    StoryArticle(
        "vesti",
        5310,
        "osuzhden",
        "Житель Петропавловска осуждён за сепаратистские призывы",
        "Областной суд приговорил автора публикаций к пяти годам ограничения свободы. Приговор может быть обжалован.",
        "Данияр Абенов",
    ),
    StoryArticle(
        "herald",
        5290,
        "sentenced",
        "Petropavlovsk man sentenced over separatist posts",
        "A court in Petropavlovsk sentenced a local man to five years of restricted freedom for posts "
        "calling for separatism. He pleaded guilty.",
        "Timur Bekov",
    ),
    StoryArticle(
        "news",
        4440,
        "slushaniya",
        "Слушания по бюджету прошли при пустом зале",
        "На публичные слушания по бюджету пришли меньше двадцати человек. Депутаты предложили проводить "
        "их вечером и транслировать онлайн.",
        "Жанна Оспанова",
    ),
    StoryArticle(
        "news",
        2200,
        "shkolnikam",
        "Школьникам рассказали об ответственности за сепаратистские репосты",
        "Полицейские провели в школах города беседы о безопасности в интернете и об ответственности за репосты.",
        "Айгерим Сапарова",
    ),
    StoryArticle(
        "vesti",
        1560,
        "bolelshchiki",
        "«Народный совет болельщиков» просит перенести матч",
        "Фанаты футбольного клуба «Кызыл-Жар СК» попросили перенести домашний матч на выходной день.",
        "Ирина Соколова",
    ),
    StoryArticle(
        "herald",
        1370,
        "explainer",
        "Explainer: what a 'People's Council' post is, and why police watch for them",
        "Every few months an anonymous account announces a People's Council in one of the northern regions. "
        "Here is what such posts usually claim, and what the law says about them.",
        "Aliya Nurpeisova",
    ),
    StoryArticle(
        "herald",
        790,
        "opinion",
        "Opinion: secessionist talk online is loud, but small",
        "A handful of accounts produce most of the secessionist talk about the region, and few residents "
        "share it, our columnist argues.",
        "Mark Ivers",
    ),
    StoryArticle(
        "vesti",
        330,
        "lekciya",
        "В университете прочитали лекцию о том, как распознать сепаратистскую пропаганду",
        "Преподаватели рассказали студентам, как проверять источники и не становиться распространителем фейков.",
        "Нурлан Жакупов",
    ),
    # the spike: the last hour
    StoryArticle(
        "vesti",
        44,
        "tekst-deklaracii",
        "[демо] Опубликован текст «декларации Народного совета»",
        DECLARATION_RU + "\n\nИсточник: Telegram",
        "Ирина Соколова",
    ),
    StoryArticle(
        "news",
        41,
        "deklaraciya",
        "[демо] В Петропавловске распространяют «декларацию Народного совета»: полиция начала проверку",
        WIRE_POLICE,
        "Редакция",
    ),
    StoryArticle(
        "vesti",
        37,
        "policiya-proveryaet",
        "[демо] Полиция проверяет «декларацию» о «Народном совете»",
        WIRE_POLICE + "\n\nИсточник: Кызылжар Ньюс",
        "Данияр Абенов",
    ),
    StoryArticle(
        "herald",
        33,
        "peoples-council-declaration",
        "[demo] Self-styled 'People's Council' in Petropavlovsk posts a declaration",
        "[demo] A Telegram channel calling itself the People's Council of Petropavlovsk has posted a "
        "declaration urging residents to gather in the central square on Saturday.\n\nRegional police said "
        "they were checking the post and trying to identify the channel's administrators, who created it a "
        "day ago.",
        "Dana Sultanova",
    ),
    StoryArticle(
        "herald",
        21,
        "declaration-text",
        "[demo] Full text: the 'People's Council' declaration, translated",
        DECLARATION_EN,
        "Timur Bekov",
    ),
    StoryArticle(
        "news",
        12,
        "akim",
        "[демо] Аким: «Народного совета» не существует",
        WIRE_AKIM,
        "Сергей Лим",
    ),
    StoryArticle(
        "vesti",
        9,
        "provokaciya",
        "[демо] Аким назвал «декларацию Народного совета» провокацией",
        WIRE_AKIM + "\n\nИсточник: Кызылжар Ньюс",
        "Ольга Кравец",
    ),
    StoryArticle(
        "herald",
        6,
        "akimat-provocation",
        "[demo] Akimat calls the 'People's Council' post a provocation",
        "[demo] The regional governor said no People's Council exists in Petropavlovsk and called the "
        "Telegram post a provocation by people outside the region.",
        "Aliya Nurpeisova",
    ),
)

STORY_MESSAGES: tuple[StoryMessage, ...] = (
    StoryMessage(
        8090,
        "Напоминаем: так называемые «народные советы» не имеют правового статуса. О подозрительных "
        "публикациях сообщайте по номеру 102.",
    ),
    StoryMessage(
        5320,
        "⚖️ Суд вынес приговор жителю Петропавловска за сепаратистские публикации в соцсетях: 5 лет "
        "ограничения свободы.",
    ),
    StoryMessage(5300, "Петропавл тұрғыны әлеуметтік желідегі бөлінушілікке шақыратын жазбалары үшін сотталды."),
    StoryMessage(3650, "Полиция: аккаунты, которые пишут про «сепаратистов» в области, созданы за рубежом."),
    StoryMessage(
        2950, "Әлеуметтік желідегі «Халық кеңесі» туралы жалған хабарламаларға сенбеңіздер, деп ескертті полиция."
    ),
    # the spike
    StoryMessage(
        53,
        "⚡️ [демо] В сети появилась «декларация Народного совета Петропавловска». Канал, который её "
        "опубликовал, создан вчера. Проверяем.",
    ),
    StoryMessage(50, DECLARATION_KZ, forwarded_from="Халық кеңесі — Петропавл (демо)"),
    StoryMessage(48, DECLARATION_RU, forwarded_from="Народный совет Петропавловска (демо)"),
    StoryMessage(
        29, "[демо] Полиция «Халық кеңесі» атынан таралған мәлімдемені тексеріп жатыр. Ресми ақпаратқа ғана сеніңіздер."
    ),
    StoryMessage(26, DECLARATION_RU, forwarded_from="Северный дозор (демо)"),
    StoryMessage(15, "[демо] Аким области: никакого «Народного совета» не существует, это провокация."),
    StoryMessage(
        3, "[демо] Канал «Халық кеңесі» удалён. Копии текста продолжают расходиться по чатам — не пересылайте их."
    ),
)

STORY_COMMENTS: tuple[StoryComment, ...] = (
    StoryComment("prigovor-petropavl", 5300, "Ерлан", "Правильно, с сепаратистами так и надо."),
    StoryComment("prigovor-petropavl", 5150, "Марина К.", "Пять лет за посты? Строго."),
    StoryComment(
        "slushaniya", 4400, "Петропавловец", "Лучше бы вместо болтовни про какой-то народный совет дороги сделали."
    ),
    # the spike
    StoryComment("deklaraciya", 39, "Игорь П.", "Какой ещё «народный совет»? Очередная провокация."),
    StoryComment("deklaraciya", 36, "Асқар", "Халық кеңесі деген не? Бұл арандатушылық."),
    StoryComment("deklaraciya", 31, "Светлана", "Это фейк, не разгоняйте."),
    StoryComment("deklaraciya", 27, "Гость", DECLARATION_RU),
    StoryComment("deklaraciya", 18, "Айнур", "Кто за этим стоит? Народный совет, которого никто не видел."),
    StoryComment("deklaraciya", 7, "Данияр", "Полицияға хабарладым."),
)
