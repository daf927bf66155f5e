"""Template training corpora for fine-tuning the small demo NER and sentiment models.

Everything is generated from the templates and word lists below with `random.Random(seed)`: the same
seed gives the same corpus, no data files or network are needed, and both corpora build in a few
milliseconds. Pure standard library.

- `ner_corpus`: sentences with character spans `(start, end_exclusive, TYPE)`, TYPE in PER/ORG/LOC/MISC.
  One sentence in eight has no entity; about 15% are German, Spanish or French.
- `sentiment_corpus`: `(text, label)` pairs, exactly `size // 3` per label; about 15% German, Spanish or
  French.
- `build_regression_set`: the reference projects' shipped regression sets, documentation prose and
  sentences of these corpora (another seed than training's).
"""

from __future__ import annotations

import random
import re
from pathlib import Path

NER_LABELS = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
SENTIMENT_LABELS = ["NEGATIVE", "NEUTRAL", "POSITIVE"]

NO_ENTITY_RATE = 1 / 8
FOREIGN_RATE = 0.15

# ---------------------------------------------------------------------------------------------------
# NER word lists
# ---------------------------------------------------------------------------------------------------

FIRST_NAMES = [
    "James", "Maria", "Wei", "Aisha", "Hans", "Sofia", "Carlos", "Yuki", "Priya", "Olga",
    "Ahmed", "Chloé", "Lars", "Fatima", "Mateo", "Ingrid", "Kwame", "Mei", "Diego", "Anna",
    "Pierre", "Giulia", "Rahul", "Elena", "Tomás", "Sven", "Amara", "Hiroshi", "Isabel", "Omar",
    "Emma", "Lukas", "Nadia", "Juan", "Zainab", "Liam", "Ana", "Dmitri", "Luca", "Grace",
]
LAST_NAMES = [
    "Smith", "Müller", "García", "Nakamura", "Patel", "Kowalski", "Okafor", "Rossi", "Dubois", "Johansson",
    "Kim", "Ivanova", "Fernández", "Schmidt", "Haddad", "Nguyen", "Silva", "O'Brien", "Tanaka", "Andersen",
    "Novak", "Rodríguez", "Fischer", "Moreau", "Singh", "Chen", "Wang", "Mensah", "Kaya", "Lopez",
    "Becker", "Jensen", "Costa", "Ahmadi", "Sato", "Martin", "Hernández", "Weber", "Brown", "Yilmaz",
]
ORGS = [
    "Google", "Siemens", "Microsoft", "Toyota", "Apple", "Amazon", "Samsung", "Nestlé", "Volkswagen", "BMW",
    "Spotify", "IKEA", "Adidas", "Netflix", "Intel", "Nokia", "Philips", "Unilever", "Reuters", "Sony",
    "Renault", "Telefónica", "SAP", "Airbus", "Petrobras", "Deutsche Bank", "European Central Bank",
    "United Nations", "World Health Organization", "General Electric", "Goldman Sachs", "Banco Santander",
    "Deutsche Telekom", "Red Cross", "Bank of America", "International Monetary Fund", "Air France",
    "Ford Motor Company", "Stanford University", "Tata Consultancy Services", "Mercedes-Benz",
]
LOCS = [
    "Mountain View", "New York", "San Francisco", "Buenos Aires", "Rio de Janeiro", "Los Angeles",
    "Mexico City", "Hong Kong", "New Delhi", "Tel Aviv", "Kuala Lumpur", "Cape Town", "Sao Paulo",
    "Las Vegas", "Silicon Valley", "Berlin", "Munich", "Hamburg", "Paris", "Lyon", "Madrid", "Barcelona",
    "London", "Tokyo", "Osaka", "Seoul", "Beijing", "Shanghai", "Mumbai", "Nairobi", "Lagos", "Cairo",
    "Toronto", "Sydney", "Zurich", "Vienna", "Stockholm", "Oslo", "Lisbon", "Rome", "Istanbul",
    "Germany", "France", "Spain", "Japan", "Brazil", "Canada", "India", "Kenya", "United Kingdom",
    "United States", "South Africa", "Saudi Arabia", "Bavaria", "California", "Texas",
]
# Cities only, for prepositions that need a city ("à Lyon", not "à Allemagne").
TOWNS = [
    "Berlin", "Munich", "Hamburg", "Paris", "Lyon", "Marseille", "Madrid", "Barcelona", "Sevilla", "London",
    "Tokyo", "Montreal", "Geneva", "Brussels", "Buenos Aires", "Rio de Janeiro", "New York", "San Francisco",
    "Mexico City", "Lisbon", "Vienna", "Zurich", "Rome", "Cologne",
]
# "City, REGION" pairs: both parts are separate LOC entities ("Mountain View, CA").
CITY_REGION = [
    ("Mountain View", "CA"), ("San Francisco", "CA"), ("Palo Alto", "CA"), ("Cupertino", "CA"),
    ("Los Angeles", "CA"), ("Seattle", "WA"), ("Redmond", "WA"), ("Austin", "TX"), ("Houston", "TX"),
    ("Boston", "MA"), ("New York", "NY"), ("Chicago", "IL"), ("Miami", "FL"), ("Denver", "CO"),
    ("Atlanta", "GA"), ("Munich", "Germany"), ("Buenos Aires", "Argentina"), ("Rio de Janeiro", "Brazil"),
    ("Lyon", "France"), ("Osaka", "Japan"), ("Toronto", "Canada"), ("Barcelona", "Spain"),
    ("Mumbai", "India"), ("Cape Town", "South Africa"), ("Zurich", "Switzerland"), ("Stuttgart", "Germany"),
]
NATIONALITIES = [
    "German", "French", "Spanish", "Japanese", "Brazilian", "Italian", "Canadian", "Indian", "Mexican",
    "Nigerian", "Swedish", "Korean", "American", "British", "Chinese", "Australian", "Kenyan", "Dutch",
]
LANGUAGES = [
    "Spanish", "English", "German", "French", "Mandarin", "Arabic", "Portuguese", "Japanese", "Hindi",
    "Swahili", "Russian", "Italian", "Korean", "Turkish",
]
EVENTS = [
    "Olympics", "World Cup", "Super Bowl", "Tour de France", "Champions League", "Wimbledon",
    "Winter Olympics", "Eurovision Song Contest", "Paralympics", "Copa America", "Grand Prix",
]
AWARDS = ["Nobel Prize", "Oscar", "Pulitzer Prize", "Grammy", "Turing Award", "Booker Prize", "Fields Medal"]
LANG_DE = ["Deutsch", "Englisch", "Spanisch", "Französisch", "Japanisch", "Italienisch", "Türkisch"]
LANG_ES = ["español", "inglés", "alemán", "francés", "portugués", "chino", "catalán"]
LANG_FR = ["français", "anglais", "allemand", "espagnol", "italien", "arabe", "japonais"]
AWARD_DE = ["Nobelpreis", "Oscar", "Pulitzer-Preis", "Grammy", "Deutschen Buchpreis"]
AWARD_ES = ["Premio Nobel", "Óscar", "Premio Cervantes", "Grammy", "Premio Goya"]
AWARD_FR = ["prix Nobel", "César", "prix Goncourt", "Grammy", "Oscar"]

DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
TIMES = ["9 am", "10:30", "noon", "3 pm", "4:15 pm", "6 pm", "8 o'clock", "midnight"]

# slot -> entity type (None: filled, but not an entity)
SLOT_TYPES = {
    "PER": "PER", "ORG": "ORG", "LOC": "LOC", "TOWN": "LOC", "CITY": "LOC", "REGION": "LOC",
    "NAT": "MISC", "LANG": "MISC", "EVENT": "MISC", "AWARD": "MISC",
    "LANG_DE": "MISC", "LANG_ES": "MISC", "LANG_FR": "MISC",
    "AWARD_DE": "MISC", "AWARD_ES": "MISC", "AWARD_FR": "MISC",
    "NUM": None, "YEAR": None, "DAY": None, "TIME": None,
}
_POOLS = {
    "ORG": ORGS, "LOC": LOCS, "TOWN": TOWNS, "NAT": NATIONALITIES, "LANG": LANGUAGES, "EVENT": EVENTS,
    "AWARD": AWARDS, "LANG_DE": LANG_DE, "LANG_ES": LANG_ES, "LANG_FR": LANG_FR, "AWARD_DE": AWARD_DE,
    "AWARD_ES": AWARD_ES, "AWARD_FR": AWARD_FR, "DAY": DAYS, "TIME": TIMES,
    "NUM": ["2", "3", "5", "7", "12", "15", "20", "25", "40", "100", "250"],
    "YEAR": [str(y) for y in range(1985, 2025)],
}

# ---------------------------------------------------------------------------------------------------
# NER templates
# ---------------------------------------------------------------------------------------------------

NER_TEMPLATES_EN = [
    "{PER} works for {ORG} in {LOC}.",
    "{PER} joined {ORG} in {YEAR}.",
    "{ORG} HQ is in {CITY}, {REGION}.",
    "{ORG} HQ is in {LOC}.",
    "{ORG} headquarters are in {LOC}.",
    "{ORG} headquarters are in {CITY}, {REGION}.",
    "{ORG} is headquartered in {CITY}, {REGION}.",
    "{PER} lives in {LOC}.",
    "{PER} was born in {CITY}, {REGION}, in {YEAR}.",
    "{PER} moved from {LOC} to {LOC} in {YEAR}.",
    "{ORG} opened a new office in {LOC}.",
    "{ORG} announced a partnership with {ORG} on {DAY}.",
    "{PER}, the CEO of {ORG}, spoke in {LOC} on {DAY}.",
    "{PER} met {PER} in {LOC} to discuss the deal with {ORG}.",
    "Shares of {ORG} rose {NUM} percent after the announcement.",
    "{ORG} plans to hire {NUM} engineers in {LOC}.",
    "{PER} won the {AWARD} in {YEAR}.",
    "{PER} speaks {LANG} and {LANG}.",
    "The {NAT} team won the {EVENT} in {LOC}.",
    "{LOC} will host the {EVENT} in {YEAR}.",
    "{PER} is a {NAT} engineer at {ORG}.",
    "According to {PER}, {ORG} will expand into {LOC} next year.",
    "{ORG} acquired {ORG} for {NUM} million dollars.",
    "The {EVENT} drew millions of viewers in {LOC}.",
    "{PER} flew to {LOC} for the {EVENT}.",
    "Yesterday {PER} visited the {ORG} office in {CITY}, {REGION}.",
    "{PER} is the new head of research at {ORG}.",
    "{ORG} and {ORG} signed an agreement in {LOC}.",
    "Our team in {LOC} works closely with {PER}.",
    "{PER} studied in {LOC} before joining {ORG}.",
    "Prices in {LOC} rose sharply, said {PER} of {ORG}.",
    "The {NAT} government met with {ORG} officials in {LOC}.",
    "{PER} translated the report into {LANG}.",
    "{ORG} reported record profits this quarter.",
    "Call {PER} at the {LOC} office tomorrow.",
    "{PER} and {PER} founded {ORG} in {YEAR}.",
    "The conference in {LOC} was organized by {ORG}.",
    "{PER} received the {AWARD} for their work on climate models.",
    "Is {PER} still working at {ORG}?",
    "Did you know that {ORG} is based in {LOC}?",
    "{PER} has lived in {LOC} since {YEAR}.",
    "A spokesperson for {ORG} declined to comment.",
    "Thousands of fans in {LOC} celebrated the {EVENT} victory.",
    "{PER} is a huge fan of the {EVENT}.",
    "The flight from {LOC} to {LOC} was delayed by {NUM} hours.",
    "{PER} reported from {CITY}, {REGION}.",
    "{ORG} will build a factory near {LOC}.",
    "{PER} wrote a book about {NAT} history.",
    "{PER} thanked {ORG} for its support.",
    "Meet {PER}, our new colleague from {LOC}.",
    "{ORG} recalled {NUM} thousand cars sold in {LOC}.",
    "The {NAT} ambassador visited {LOC} on {DAY}.",
    "{PER} is learning {LANG} before moving to {LOC}.",
    "{ORG} is one of the largest employers in {LOC}.",
    "In {YEAR}, {PER} became the first {NAT} person to win the {AWARD}.",
    "{PER} left {ORG} to start a company in {LOC}.",
    "Officials from {ORG} and {ORG} will meet in {LOC}.",
    "{PER} said the {EVENT} was the highlight of the year.",
    "We drove from {LOC} to {CITY}, {REGION} in {NUM} hours.",
    "{PER} presented the results at {ORG} headquarters.",
    "The {ORG} store in {LOC} closes at {TIME}.",
    "{PER} called {PER} from {LOC}.",
    "{ORG} sponsors the {EVENT} this year.",
    "{PER} was interviewed by {ORG} about the {EVENT}.",
    "My friend {PER} just got a job at {ORG}!",
]
NER_TEMPLATES_FOREIGN = [
    # German
    "{PER} arbeitet bei {ORG} in {LOC}.",
    "{PER} wohnt in {LOC}.",
    "{ORG} hat seinen Sitz in {LOC}.",
    "{PER} ist nach {TOWN} gezogen.",
    "{ORG} eröffnet ein neues Büro in {TOWN}.",
    "{PER} hat {PER} in {TOWN} getroffen.",
    "{PER} spricht fließend {LANG_DE}.",
    "{PER} hat den {AWARD_DE} gewonnen.",
    "Die Zentrale von {ORG} befindet sich in {CITY}, {REGION}.",
    # Spanish
    "{PER} vive en {LOC}.",
    "{PER} trabaja en {ORG} en {LOC}.",
    "{ORG} tiene su sede en {LOC}.",
    "{PER} se mudó a {TOWN} en {YEAR}.",
    "{ORG} abrió una oficina en {TOWN}.",
    "{PER} habla {LANG_ES} y {LANG_ES}.",
    "{PER} ganó el {AWARD_ES} en {YEAR}.",
    "{PER} conoció a {PER} en {TOWN}.",
    "La sede de {ORG} está en {CITY}, {REGION}.",
    # French
    "{PER} travaille chez {ORG} à {TOWN}.",
    "{PER} habite à {TOWN}.",
    "{ORG} a son siège à {TOWN}.",
    "{PER} a déménagé à {TOWN} en {YEAR}.",
    "{ORG} ouvre un bureau à {TOWN}.",
    "{PER} parle {LANG_FR} couramment.",
    "{PER} a remporté le {AWARD_FR} en {YEAR}.",
    "{PER} a rencontré {PER} à {TOWN}.",
    "Le siège de {ORG} se trouve à {CITY}, {REGION}.",
]
NO_ENTITY_TEMPLATES_EN = [
    "The meeting was moved to {TIME}.",
    "I will call you back in {NUM} minutes.",
    "The weather is nice today.",
    "Please send me the report by {DAY}.",
    "The printer on the second floor is broken again.",
    "Can you pick up some milk on the way home?",
    "Our train was {NUM} minutes late.",
    "The new policy takes effect next month.",
    "She bought a new bike last week.",
    "There are {NUM} apples on the table.",
    "Lunch will be served at noon.",
    "He forgot his umbrella at the office.",
    "The quarterly results look promising.",
    "We need {NUM} more chairs for the workshop.",
    "The kids are playing in the garden.",
    "Prices went up again this year.",
    "The server restarted at {TIME} without warning.",
    "Don't forget to water the plants.",
    "The store closes early on {DAY}.",
    "It might rain later this afternoon.",
    "The committee approved the budget.",
    "My phone battery died during the call.",
    "Who left the lights on?",
    "The bus leaves at {TIME} every morning.",
]
NO_ENTITY_TEMPLATES_FOREIGN = [
    "Das Wetter ist heute schön.",
    "Der Zug hat {NUM} Minuten Verspätung.",
    "Wir treffen uns morgen früh.",
    "Hace mucho calor hoy.",
    "La reunión es a las tres.",
    "Necesito comprar pan y leche.",
    "Il fait beau aujourd'hui.",
    "Le train a {NUM} minutes de retard.",
    "Je dois finir ce rapport ce soir.",
]

_SLOT_RE = re.compile(r"\{([A-Z_]+)\}")


def _parse(template: str) -> list[str]:
    """Alternating [literal, slot, literal, ..., literal]."""
    parts = _SLOT_RE.split(template)
    for slot in parts[1::2]:
        if slot not in SLOT_TYPES:
            raise ValueError(f"unknown slot {{{slot}}} in template {template!r}")
    return parts


_EN = [_parse(t) for t in NER_TEMPLATES_EN]
_FOREIGN = [_parse(t) for t in NER_TEMPLATES_FOREIGN]
_NONE_EN = [_parse(t) for t in NO_ENTITY_TEMPLATES_EN]
_NONE_FOREIGN = [_parse(t) for t in NO_ENTITY_TEMPLATES_FOREIGN]


def _person(rng: random.Random) -> str:
    first = rng.choice(FIRST_NAMES)
    return first if rng.random() < 0.25 else f"{first} {rng.choice(LAST_NAMES)}"


def _vary_end(literal: str, rng: random.Random) -> str:
    """Sometimes drop or change the final full stop."""
    if not literal.endswith("."):
        return literal
    r = rng.random()
    if r < 0.10:
        return literal[:-1]
    if r < 0.15:
        return literal[:-1] + "!"
    return literal


def _fill(parts: list[str], rng: random.Random) -> tuple[str, list[tuple[int, int, str]]]:
    lower = rng.random() < 0.08  # informal: lower-case the template text (entities keep their case)
    chunks: list[str] = []
    spans: list[tuple[int, int, str]] = []
    values: list[str] = []  # the entity strings, to check text[start:end] against
    used: set[str] = set()
    pair: tuple[str, str] | None = None
    pos = 0
    last = len(parts) - 1
    for i, part in enumerate(parts):
        if i % 2 == 0:
            value = part.lower() if lower else part
            if i == last:
                value = _vary_end(value, rng)
            etype = None
        else:
            if part in ("CITY", "REGION"):
                if pair is None:
                    pair = rng.choice(CITY_REGION)
                value = pair[0] if part == "CITY" else pair[1]
            else:
                for _ in range(10):  # distinct values for repeated slots ("{LOC} to {LOC}")
                    value = _person(rng) if part == "PER" else rng.choice(_POOLS[part])
                    if value not in used:
                        break
            used.add(value)
            etype = SLOT_TYPES[part]
        if etype is not None:
            spans.append((pos, pos + len(value), etype))
            values.append(value)
        chunks.append(value)
        pos += len(value)
    text = "".join(chunks)
    for (start, end, etype), value in zip(spans, values):
        assert text[start:end] == value, (text, start, end, value)
        assert etype in ("PER", "ORG", "LOC", "MISC"), etype
    return text, spans


def ner_corpus(seed: int = 0, size: int = 1000) -> list[tuple[str, list[tuple[int, int, str]]]]:
    """Sentences with entity character spans (start, end_exclusive, TYPE), TYPE in PER/ORG/LOC/MISC.

    Exactly round(size / 8) sentences have no entity; about 15% use German, Spanish or French templates.
    """
    rng = random.Random(seed)
    n_none = round(size * NO_ENTITY_RATE)
    n_foreign = round(size * FOREIGN_RATE)
    n_none_foreign = min(n_none, round(n_none * FOREIGN_RATE))
    n_ent_foreign = min(size - n_none, n_foreign - n_none_foreign)
    plan = (
        [_NONE_FOREIGN] * n_none_foreign
        + [_NONE_EN] * (n_none - n_none_foreign)
        + [_FOREIGN] * n_ent_foreign
        + [_EN] * (size - n_none - n_ent_foreign)
    )
    rng.shuffle(plan)
    out = []
    for templates in plan:
        parts = rng.choice(templates)
        out.append(_fill(parts, rng))
    return out


# ---------------------------------------------------------------------------------------------------
# Sentiment
# ---------------------------------------------------------------------------------------------------

SUBJECTS = [
    "phone", "hotel", "movie", "service", "food", "delivery", "app", "laptop", "restaurant", "book",
    "camera", "car", "game", "course", "coffee", "support team", "room", "flight", "concert", "website",
    "jacket", "software update", "pizza", "battery", "staff",
]
# Things one orders and that get delivered.
PRODUCTS = ["phone", "laptop", "camera", "jacket", "book", "battery", "game", "coffee machine", "printer"]
# Things one tries / uses.
TRYABLE = ["phone", "hotel", "app", "laptop", "restaurant", "camera", "car", "game", "course", "coffee",
           "website", "pizza", "service", "food", "delivery service"]
COUNTABLE = [
    "phone", "hotel", "movie", "app", "laptop", "restaurant", "book", "camera", "car", "game", "course",
    "website", "jacket", "flight", "concert", "room", "pizza",
]
POS_ADJ = [
    "excellent", "amazing", "fantastic", "great", "wonderful", "superb", "outstanding", "brilliant",
    "perfect", "delightful", "impressive", "really good", "awesome", "lovely",
]
NEG_ADJ = [
    "terrible", "awful", "horrible", "disappointing", "dreadful", "useless", "a disaster", "really bad",
    "overpriced", "unacceptable", "poor", "a joke", "frustrating",
]
NEU_ADJ = ["average", "okay", "fine", "as expected", "as described", "standard", "neither good nor bad",
           "about what I expected"]
POS_PHRASE = [
    "exceeded my expectations", "works perfectly", "is worth every penny", "was a pleasant surprise",
    "made my day", "could not have been better", "was better than I hoped", "is absolutely fantastic",
    "was excellent", "is the best I have ever had",
]
NEG_PHRASE = [
    "was a complete disappointment", "is a waste of money", "let me down", "was the worst I have ever had",
    "fell far short of my expectations", "ruined my day", "was a nightmare", "is not worth the price",
    "was terrible", "keeps getting worse",
]
POS_PAST = ["exceeded my expectations", "was a pleasant surprise", "made my day", "was better than I hoped",
            "was excellent", "worked perfectly", "was worth every penny"]
NEG_PAST = ["let me down", "was a complete disappointment", "ruined my day", "was a nightmare", "was terrible",
            "fell far short of my expectations", "was a waste of money"]
POS_TAIL = ["I would recommend it to anyone", "I am very happy with it", "I will definitely come back",
            "everyone should try it", "I could not be happier"]
NEG_TAIL = ["I want my money back", "I will never use it again", "nobody seemed to care",
            "I would not recommend it to anyone", "I am very unhappy"]
OPENERS = ["Honestly", "To be fair", "Overall", "Well", "In short", "All in all"]

POS_SHORT = [
    "Love it", "Absolutely wonderful experience", "Highly recommended", "Best purchase ever", "Simply amazing",
    "Five stars", "Great value", "Really impressed", "Totally worth it", "So good", "Exceeded my expectations",
    "I am very happy", "The service was excellent", "Amazing", "Perfect",
]
NEG_SHORT = [
    "This is terrible", "The worst purchase I ever made", "Never again",
    "Total waste of money", "Very disappointing", "Awful experience", "Not worth it", "Do not buy",
    "Completely useless", "So frustrating", "I want a refund", "Terrible", "Horrible",
]
NEU_SHORT = [
    "It is what it is", "Okay I guess", "Average", "Neither good nor bad", "It is a phone",
    "No strong opinion", "It comes in black and white", "The box contains a charger and a cable",
    "Standard", "As described",
]


def _other(rng: random.Random, subject: str) -> str:
    while True:
        other = rng.choice(SUBJECTS)
        if other != subject:
            return other


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


# Word lists of the two polar labels, for the same sentence forms.
POLARITY = {
    "POSITIVE": {"short": POS_SHORT, "verbs": ["love", "really like", "adore", "enjoy"], "adjectives": POS_ADJ,
                 "phrases": POS_PHRASE, "past": POS_PAST, "tails": POS_TAIL, "plain": "great", "extreme": "Best"},
    "NEGATIVE": {"short": NEG_SHORT, "verbs": ["hate", "really dislike", "regret choosing", "cannot stand"],
                 "adjectives": NEG_ADJ, "phrases": NEG_PHRASE, "past": NEG_PAST, "tails": NEG_TAIL,
                 "plain": "terrible", "extreme": "Worst"},
}


def _en_polar(rng: random.Random, label: str) -> str:
    words = POLARITY[label]
    s, adj, ph = rng.choice(SUBJECTS), rng.choice(words["adjectives"]), rng.choice(words["phrases"])
    attributive = words["plain"] if adj.startswith(("a ", "really ")) else adj  # "What a great phone"
    forms = [
        lambda: rng.choice(words["short"]),
        lambda: f"I {rng.choice(words['verbs'])} this {s}",
        lambda: f"What {_a(attributive)} {s}",
        lambda: f"{_cap(attributive)} {s}",
        lambda: f"{words['extreme']} {s} ever",
        lambda: f"The {s} was {adj}",
        lambda: f"This {s} is {adj}",
        lambda: f"The {s} {ph}",
        lambda: f"{rng.choice(OPENERS)}, the {s} {ph} and {rng.choice(words['tails'])}",
        lambda: f"I tried the {rng.choice(TRYABLE)} on {rng.choice(DAYS)} and it {rng.choice(words['past'])}",
        lambda: f"The {s} was {adj} and the {_other(rng, s)} was {rng.choice(words['adjectives'])}",
    ]
    return rng.choice(forms)()


def _en_neutral(rng: random.Random) -> str:
    s, day, time = rng.choice(SUBJECTS), rng.choice(DAYS), rng.choice(TIMES)
    c, p = rng.choice(COUNTABLE), rng.choice(PRODUCTS)
    n = rng.choice(["2", "3", "4", "6", "10", "12"])
    forms = [
        lambda: rng.choice(NEU_SHORT),
        lambda: f"The meeting is at {time}",
        lambda: f"The package arrived on {day}",
        lambda: f"The store opens at {time}",
        lambda: f"It is {_a(c)}",
        lambda: f"The {p} arrived on {day}",
        lambda: f"The {s} is {rng.choice(NEU_ADJ)}",
        lambda: f"I have had the {p} for {n} weeks",
        lambda: f"The {p} costs {n}0 dollars",
        lambda: f"Does the {p} come with a warranty?",
        lambda: f"Where can I find the {s}?",
        lambda: f"I will check the {s} on {day}",
        lambda: f"We talked about the {s} at lunch",
        lambda: f"I read about the {s} on {day} and will decide next week",
        lambda: f"The {p} was ordered on {day} and should arrive in {n} days",
        lambda: f"My colleague asked me which {p} I use",
    ]
    return rng.choice(forms)()


# German: (nominative, demonstrative accusative); predicate adjectives do not inflect.
DE_SUBJ = [("das Handy", "dieses Handy"), ("das Hotel", "dieses Hotel"), ("der Film", "diesen Film"),
           ("das Essen", "dieses Essen"), ("die App", "diese App"), ("der Service", "diesen Service"),
           ("die Lieferung", "diese Lieferung"), ("das Restaurant", "dieses Restaurant"),
           ("das Buch", "dieses Buch"), ("der Laptop", "diesen Laptop")]
DE_POS = ["ausgezeichnet", "wunderbar", "großartig", "fantastisch", "super", "toll", "hervorragend"]
DE_NEG = ["schrecklich", "furchtbar", "enttäuschend", "eine Katastrophe", "miserabel", "katastrophal"]
# Spanish: (subject, demonstrative); adjectives chosen to be gender-invariant.
ES_SUBJ = [("el teléfono", "este teléfono"), ("el hotel", "este hotel"), ("la película", "esta película"),
           ("la comida", "esta comida"), ("la aplicación", "esta aplicación"), ("el servicio", "este servicio"),
           ("la entrega", "esta entrega"), ("el restaurante", "este restaurante"), ("el libro", "este libro")]
ES_POS = ["excelente", "increíble", "genial", "impresionante", "espectacular"]
ES_NEG = ["horrible", "terrible", "un desastre", "decepcionante", "lamentable"]
# French: (subject, demonstrative); adjectives chosen to be gender-invariant.
FR_SUBJ = [("le téléphone", "ce téléphone"), ("l'hôtel", "cet hôtel"), ("le film", "ce film"),
           ("la nourriture", "cette nourriture"), ("l'application", "cette application"),
           ("le service", "ce service"), ("la livraison", "cette livraison"), ("le restaurant", "ce restaurant"),
           ("le livre", "ce livre")]
FR_POS = ["super", "formidable", "magnifique", "incroyable", "remarquable", "extraordinaire"]
FR_NEG = ["horrible", "terrible", "catastrophique", "pénible", "minable", "une catastrophe"]


# Per language and label: templates over {Subj} (capitalised subject), {dem} (demonstrative form),
# {pos}/{neg} (an adjective), {day}, {arrived}; a list inside is one template choosing among phrases.
FOREIGN_TEMPLATES = {
    "de": {
        "POSITIVE": ["Ich liebe {dem}", "{Subj} war {pos}", "{Subj} ist {pos}", "Ich mag {dem} sehr",
                     ["Sehr gut", "Super Service", "Alles perfekt", "Absolut empfehlenswert"]],
        "NEGATIVE": ["Ich hasse {dem}", "{Subj} war {neg}", "{Subj} ist {neg}", "Ich bereue, {dem} gekauft zu haben",
                     ["Nie wieder", "Totaler Mist", "Sehr enttäuschend", "Ich hasse Warten"]],
        "NEUTRAL": ["{Subj} kam am {day} an", "Es ist ein Telefon", "Das Treffen ist um 15 Uhr",
                    "Ich habe {dem} gestern gesehen", "Der Laden öffnet um neun Uhr", "Das Paket kam am Dienstag an",
                    "Die App gibt es für Android und iOS"],
    },
    "es": {
        "POSITIVE": ["Me encanta {dem}", "{Subj} fue {pos}", "{Subj} es {pos}",
                     ["Muy bueno", "Me encanta", "Totalmente recomendable", "Una maravilla"]],
        "NEGATIVE": ["Odio {dem}", "{Subj} fue {neg}", "{Subj} es {neg}",
                     ["Odio esperar", "Nunca más", "Qué mala experiencia", "No lo recomiendo"]],
        "NEUTRAL": ["Es un teléfono", "La reunión es a las tres", "{Subj} llegó el {day}", "Vi {dem} ayer",
                    "El paquete llegó el martes", "La tienda abre a las nueve"],
    },
    "fr": {
        "POSITIVE": ["J'adore {dem}", "{Subj} était {pos}", "{Subj} est {pos}",
                     ["C'est génial", "Très bien", "Je recommande vivement", "Parfait"]],
        "NEGATIVE": ["Je déteste {dem}", "{Subj} était {neg}", "{Subj} est {neg}",
                     ["C'est nul", "Plus jamais", "Quelle déception", "Je ne recommande pas"]],
        "NEUTRAL": ["C'est un téléphone", "La réunion est à 15 heures", "{Subj} est {arrived} {day}",
                    "J'ai vu {dem} hier", "Le colis est arrivé mardi", "Le magasin ouvre à neuf heures"],
    },
}
FOREIGN_WORDS = {  # subjects, positive and negative adjectives, days
    "de": (DE_SUBJ, DE_POS, DE_NEG, ["Montag", "Dienstag", "Freitag"]),
    "es": (ES_SUBJ, ES_POS, ES_NEG, ["lunes", "martes", "viernes"]),
    "fr": (FR_SUBJ, FR_POS, FR_NEG, ["lundi", "mardi", "vendredi"]),
}


def _foreign(rng: random.Random, label: str) -> str:
    lang = rng.choice(sorted(FOREIGN_TEMPLATES))
    subjects, positive, negative, days = FOREIGN_WORDS[lang]
    subj, dem = rng.choice(subjects)
    template = rng.choice(FOREIGN_TEMPLATES[lang][label])
    if isinstance(template, list):
        template = rng.choice(template)
    return template.format(Subj=_cap(subj), dem=dem, pos=rng.choice(positive), neg=rng.choice(negative),
                           day=rng.choice(days), arrived="arrivée" if dem.startswith("cette") else "arrivé")


_EN_GEN = {"POSITIVE": lambda r: _en_polar(r, "POSITIVE"), "NEGATIVE": lambda r: _en_polar(r, "NEGATIVE"),
           "NEUTRAL": _en_neutral}


def _finish(text: str, label: str, rng: random.Random) -> str:
    """Vary casing and the final punctuation a little."""
    if rng.random() < 0.1:
        text = text.lower()
    if text.endswith("?"):
        return text
    r = rng.random()
    if label != "NEUTRAL" and r < 0.2:
        return text + "!"
    return text + "." if r < 0.65 else text


def sentiment_corpus(seed: int = 0, size: int = 540) -> list[tuple[str, str]]:
    """(text, label) pairs, exactly size // 3 per label in SENTIMENT_LABELS, shuffled.

    About 15% of each label is German, Spanish or French. Texts are unique where the templates allow;
    when they run out, duplicates fill the rest (balance takes precedence over uniqueness).
    """
    rng = random.Random(seed)
    per_label = size // 3
    n_foreign = round(per_label * FOREIGN_RATE)
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for label in SENTIMENT_LABELS:
        for count, gen in ((n_foreign, lambda r, lab=label: _foreign(r, lab)), (per_label - n_foreign, _EN_GEN[label])):
            made = 0
            attempts = 0
            while made < count:
                text = _finish(gen(rng), label, rng)
                attempts += 1
                key = text.lower().rstrip(".!")
                if key in seen and attempts < 30 * count:
                    continue
                seen.add(key)
                out.append((text, label))
                made += 1
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------------------------------------------
# The shipped regression sets
REGRESSION_DIR = Path(__file__).resolve().parents[3] / "config" / "regression"
# Rows per project: documentation prose of the project's lengths (another seed than the bench's), and for
# ner and sentiment as many sentences of the demo's template corpus (seed 1; the demo trains on seed 0).
REGRESSION_ROWS = {"keywords": (200, 0), "ner": (200, 300), "sentiment": (150, 300)}


def build_regression_set(project: str) -> list[dict]:
    """The project's shipped regression set (`config/regression/<project>.jsonl`, written once with
    workloads.write_jsonl; read, never rebuilt, by validation)."""
    from ..workloads import build_corpus

    prose, templated = REGRESSION_ROWS[project]
    rows = [{"id": f"docs-{i:03d}", "text": doc["text"]}
            for i, doc in enumerate(build_corpus(project, seed=1, count=prose))]
    if project == "ner":
        rows += [{"id": f"templates-{i:03d}", "text": text} for i, (text, _) in enumerate(ner_corpus(1, templated))]
    elif project == "sentiment":
        rows += [{"id": f"templates-{i:03d}", "text": text} for i, (text, _) in enumerate(sentiment_corpus(1, templated))]
    return rows
