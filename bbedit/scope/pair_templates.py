"""Hand-written phrasings of relations, for generating scope-gate training pairs.

Every form has ``{}`` where the subject goes. ``RELATIONS`` maps a relation key to its
entity group and its forms (questions and statement prefixes); ParaRel's own patterns
are added to the Wikidata ones when the pair generator reads them. ``CLOSE`` lists
relations that are easy to confuse (CEO vs CTO, director vs cast, occupation vs
position held), used for the hardest negatives. The synthetic company/person/product
relations describe the shape of user edits; their entities are invented
(:func:`invented_companies`, :func:`invented_people`).
"""

from __future__ import annotations

import random

# relation -> (group, forms)
RELATIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    # --- Wikidata relations (ParaRel ids; ParaRel patterns are added to these) --------------------
    "P19": ("person", ("Where was {} born?", "In what city was {} born?", "What is the birthplace of {}?",
                       "{} was born in", "The place of birth of {} is")),
    "P20": ("person", ("Where did {} die?", "In what city did {} die?", "The place of death of {} is",
                       "{} died in")),
    "P27": ("person", ("What is the country of citizenship of {}?", "Which country is {} a citizen of?",
                       "{} is a citizen of", "What nationality is {}?")),
    "P101": ("person", ("What field does {} work in?", "{} works in the field of", "What is {}'s field of work?")),
    "P103": ("person", ("What is the native language of {}?", "What is {}'s mother tongue?",
                        "The mother tongue of {} is")),
    "P106": ("person", ("What is {}'s occupation?", "What does {} do for a living?", "What is the profession of {}?",
                        "{}'s occupation is", "The occupation of {} is")),
    "P108": ("person", ("Who does {} work for?", "Who is {}'s employer?", "{} is employed by",
                        "Which company employs {}?")),
    "P1303": ("person", ("What instrument does {} play?", "Which instrument did {} play?", "{} plays the")),
    "P136": ("person", ("What genre of music does {} play?", "What kind of music does {} make?",
                        "{} is known for performing")),
    "P140": ("person", ("What is the religion of {}?", "Which religion does {} follow?", "The religion of {} is",
                        "{} is affiliated with the religion of")),
    "P1412": ("person", ("What language does {} speak?", "Which languages did {} write in?",
                         "The language used by {} is", "{} speaks the language")),
    "P264": ("person", ("What record label is {} signed to?", "Which music label represents {}?",
                        "The record label of {} is")),
    "P39": ("person", ("What position does {} hold?", "Which office did {} hold?", "The position held by {} is",
                       "{} holds the position of")),
    "P413": ("person", ("What position does {} play?", "Which position on the field does {} play?",
                        "{} plays in the position of")),
    "P463": ("person", ("What organization is {} a member of?", "Which group does {} belong to?",
                        "{} is a member of")),
    "P937": ("person", ("Where did {} work?", "In which city did {} work?", "The work location of {} is")),
    "P36": ("place", ("What is the capital of {}?", "Which city is the capital of {}?", "The capital of {} is",
                      "{}'s capital city is")),
    "P1376": ("place", ("What is {} the capital of?", "Which country has {} as its capital?", "{} is the capital of")),
    "P37": ("place", ("What is the official language of {}?", "Which language is official in {}?",
                      "The official language of {} is")),
    "P30": ("place", ("On which continent is {}?", "Which continent is {} located on?", "{} is on the continent of")),
    "P17": ("place", ("In what country is {}?", "Which country is {} in?", "{} is located in the country of",
                      "The country of {} is")),
    "P131": ("place", ("In which region is {} located?", "What administrative area is {} in?",
                       "{} is located in the region of")),
    "P47": ("place", ("Which country borders {}?", "What shares a border with {}?", "{} shares a border with")),
    "P530": ("place", ("Which country does {} have diplomatic relations with?",
                       "{} maintains diplomatic relations with")),
    "P190": ("place", ("What is the twin city of {}?", "Which city is {} twinned with?", "The sister city of {} is")),
    "P138": ("place", ("Who is {} named after?", "What was {} named for?", "{} is named after")),
    "P361": ("place", ("What is {} part of?", "{} is a part of", "Which larger whole does {} belong to?")),
    "P159": ("org", ("Where is the headquarters of {}?", "In which city is {} headquartered?",
                     "The headquarters of {} is in", "{} is headquartered in")),
    "P740": ("org", ("Where was {} founded?", "In which city was {} formed?", "{} was founded in the city of")),
    "P127": ("org", ("Who owns {}?", "Which company owns {}?", "{} is owned by", "The owner of {} is")),
    "P1001": ("org", ("In which jurisdiction does {} apply?", "{} is a legal term in")),
    "P176": ("product", ("Who manufactures {}?", "Which company produces {}?", "{} is produced by",
                         "The manufacturer of {} is")),
    "P178": ("product", ("Who developed {}?", "Which company developed {}?", "{} was developed by",
                         "The developer of {} is")),
    "P495": ("product", ("In which country was {} created?", "What is the country of origin of {}?",
                         "{} was created in the country of")),
    "P449": ("product", ("On which network did {} originally air?", "Which channel first broadcast {}?",
                         "{} was originally aired on")),
    "P364": ("product", ("What is the original language of {}?", "In which language was {} originally made?",
                         "The original language of {} is")),
    "P407": ("product", ("In which language was {} written?", "What language is {} written in?",
                         "{} was written in the language")),
    "P279": ("product", ("What is {} a subclass of?", "{} is a type of", "What kind of thing is {}?")),
    # --- PopQA relations without a ParaRel id (occupation, birthplace, country... map to P106, P19...)
    "director": ("film", ("Who was the director of {}?", "Who directed {}?", "The director of {} is",
                          "{} was directed by", "Who is the director of the film {}?")),
    "cast": ("film", ("Who starred in {}?", "Who are the cast members of {}?", "The cast of {} includes",
                      "Which actors appeared in {}?", "Who played the lead role in {}?")),
    "producer": ("film", ("Who was the producer of {}?", "Who produced {}?", "The producer of {} is",
                          "{} was produced by")),
    "screenwriter": ("film", ("Who was the screenwriter for {}?", "Who wrote the screenplay of {}?",
                              "The screenwriter of {} is", "The script of {} was written by")),
    "composer": ("film", ("Who was the composer of {}?", "Who composed the music for {}?",
                          "The composer of {} is", "The music of {} was composed by")),
    "genre": ("film", ("What genre is {}?", "What is the genre of {}?", "The genre of {} is",
                       "{} belongs to the genre")),
    "release": ("film", ("When was {} released?", "In what year did {} come out?", "{} was released in")),
    "author": ("book", ("Who is the author of {}?", "Who wrote {}?", "The author of {} is", "{} was written by")),
    "publisher": ("book", ("Who published {}?", "The publisher of {} is", "Which company published {}?")),
    "book_genre": ("book", ("What genre is {}?", "What kind of book is {}?", "The genre of {} is")),
    "father": ("person", ("Who is the father of {}?", "Who was {}'s father?", "The father of {} is",
                          "{}'s father is")),
    "mother": ("person", ("Who is the mother of {}?", "Who was {}'s mother?", "The mother of {} is",
                          "{}'s mother is")),
    "spouse": ("person", ("Who is {} married to?", "Who is the spouse of {}?", "The spouse of {} is")),
    "sport": ("person", ("What sport does {} play?", "Which sport does {} compete in?", "{} plays the sport of",
                         "The sport {} plays is")),
    "birthdate": ("person", ("When was {} born?", "What is the date of birth of {}?", "{} was born on",
                             "How old is {}?")),
    "color": ("thing", ("What color is {}?", "What is the colour of {}?", "The color of {} is")),
    "thing_country": ("thing", ("In what country is {}?", "Where does {} come from?", "{} originates from")),
    # --- synthetic user edits: companies, products, people (invented entities only) ---------------
    "ceo": ("company", ("Who is the CEO of {}?", "The CEO of {} is", "Who runs {}?", "Who heads {}?",
                        "Who leads {}?", "Who is the boss of {}?", "Who is the chief executive of {}?",
                        "{}'s chief executive officer is", "Who is in charge of {}?", "who's the ceo of {}")),
    "cto": ("company", ("Who is the CTO of {}?", "The chief technology officer of {} is",
                        "Who leads technology at {}?", "Who is the technical chief of {}?", "{}'s CTO is",
                        "who is {}'s chief technology officer")),
    "cfo": ("company", ("Who is the CFO of {}?", "The chief financial officer of {} is",
                        "Who manages the finances of {}?", "{}'s CFO is")),
    "founder": ("company", ("Who founded {}?", "The founder of {} is", "Who started {}?", "{} was founded by",
                            "Who created the company {}?")),
    "founded_year": ("company", ("When was {} founded?", "In what year was {} established?",
                                 "{} was founded in the year", "How long has {} existed?")),
    "hq": ("company", ("Where is {} headquartered?", "The headquarters of {} are in", "Where are {}'s main offices?",
                       "In which city is {} based?", "{} is headquartered in")),
    "employees": ("company", ("How many employees does {} have?", "The number of people working at {} is",
                              "How big is {}'s workforce?", "How many people does {} employ?")),
    "product": ("company", ("What is {}'s main product?", "What does {} make?", "The flagship product of {} is",
                            "What does {} sell?")),
    "parent": ("company", ("Which company owns {}?", "The parent company of {} is", "{} is a subsidiary of",
                           "Who acquired {}?")),
    "ticker": ("company", ("What is the stock ticker of {}?", "{} trades under the ticker",
                           "Under which symbol is {} listed?")),
    "revenue": ("company", ("What was {}'s revenue last year?", "How much money does {} make?",
                            "The annual revenue of {} is")),
    "price": ("plan", ("How much does the {} cost?", "What is the price of the {}?", "The {} costs",
                       "The monthly price of the {} is", "how much is the {} per month")),
    "plan_limit": ("plan", ("How many users does the {} allow?", "The user limit of the {} is",
                            "What is the seat limit on the {}?")),
    "plan_launch": ("plan", ("When was the {} launched?", "The {} was introduced in", "What is the launch date of the {}?")),
    "employer": ("worker", ("Who does {} work for?", "{} is employed by", "Which company employs {}?",
                            "Where does {} work?", "{} works at")),
    "job_title": ("worker", ("What is {}'s job title?", "What is {}'s role?", "{} works as the",
                             "What is the job of {}?")),
    "residence": ("worker", ("Where does {} live?", "{} lives in", "In which city does {} reside?")),
    "worker_birthplace": ("worker", ("Where was {} born?", "{} was born in the city of", "What is {}'s hometown?")),
    "worker_age": ("worker", ("How old is {}?", "When was {} born?", "{} was born in the year")),
    "manager": ("worker", ("Who is {}'s manager?", "Who does {} report to?", "The manager of {} is")),
}

# relations that are easy to confuse with each other (both directions)
CLOSE: tuple[tuple[str, str], ...] = (
    ("P19", "P20"), ("P19", "P27"), ("P27", "P1412"), ("P103", "P1412"), ("P106", "P39"), ("P106", "P101"),
    ("P108", "P463"), ("P937", "P108"), ("P176", "P178"), ("P364", "P407"), ("P37", "P36"),
    ("P17", "P131"), ("P159", "P740"), ("P495", "P364"), ("P19", "birthdate"), ("father", "mother"),
    ("P413", "sport"), ("P136", "P1303"), ("director", "cast"), ("director", "producer"), ("director", "screenwriter"),
    ("screenwriter", "author"), ("composer", "director"), ("producer", "screenwriter"), ("author", "publisher"),
    ("ceo", "cto"), ("ceo", "cfo"), ("cto", "cfo"), ("ceo", "founder"), ("founder", "founded_year"),
    ("hq", "founded_year"), ("employees", "revenue"), ("product", "parent"), ("price", "plan_limit"),
    ("price", "plan_launch"), ("employer", "job_title"), ("employer", "residence"), ("residence", "worker_birthplace"),
    ("worker_birthplace", "worker_age"), ("manager", "employer"),
)

# Inverse relations phrased with the same words ("the capital of Japan" / "Japan is the capital of"):
# never each other's negatives, since the query of one about the other's subject is the other's
# question in a different word order (or no question at all).
INVERSE: tuple[tuple[str, str], ...] = (("P36", "P1376"),)

# PopQA's 16 templates (regex over the question) -> relation key
POPQA_TEMPLATES: tuple[tuple[str, str], ...] = (
    (r"What is (.+)'s occupation\?", "P106"), (r"In what city was (.+) born\?", "P19"),
    (r"What genre is (.+)\?", "genre"), (r"Who is the father of (.+)\?", "father"),
    (r"In what country is (.+)\?", "P17"), (r"Who was the producer of (.+)\?", "producer"),
    (r"Who was the director of (.+)\?", "director"), (r"What is (.+) the capital of\?", "P1376"),
    (r"Who was the screenwriter for (.+)\?", "screenwriter"), (r"Who was the composer of (.+)\?", "composer"),
    (r"What color is (.+)\?", "color"), (r"What is the religion of (.+)\?", "P140"),
    (r"What sport does (.+) play\?", "sport"), (r"Who is the author of (.+)\?", "author"),
    (r"Who is the mother of (.+)\?", "mother"), (r"What is the capital of (.+)\?", "P36"),
)

# words that zsRE/NQ-style question edits get as a "subject" although they name no entity
GENERIC_WORDS: tuple[str, ...] = (
    "song", "i", "flash", "the sun", "film", "water", "book", "team", "city", "show", "game", "season", "war",
    "world", "music", "king", "president", "movie", "you", "it", "love", "series", "star", "first", "time",
    "episode", "character", "moon", "river", "church", "company", "album", "word", "name", "day", "man",
)

_SYL_A = ("Vel", "Quor", "Zan", "Tril", "Orv", "Kest", "Brim", "Lum", "Nex", "Pral", "Sor", "Tav", "Yel", "Drav",
          "Fen", "Grel", "Hux", "Jor", "Mav", "Plix", "Ost", "Cair", "Dun", "Esk", "Ilv", "Kor", "Rev", "Ulm")
_SYL_B = ("trix", "ado", "ion", "ora", "ux", "eth", "ant", "ify", "ara", "ex", "ine", "oni", "alis", "qua", "ett")
_INDUSTRY = ("Dynamics", "Labs", "Systems", "Robotics", "Foods", "Analytics", "Bank", "Motors", "Health", "Energy",
             "Software", "Logistics", "Media", "Pharma", "Networks", "Studios", "Capital", "Security")
_LEGAL = ("", "", "", " Inc.", " Ltd", " Corporation", " GmbH", " AG", " LLC")
_FIRST = ("Lena", "Tomas", "Ari", "Mireille", "Kofi", "Ines", "Bram", "Sana", "Oskar", "Yuki", "Dario", "Amara",
          "Henrik", "Noor", "Pavel", "Liesel", "Rafael", "Tamsin", "Jun", "Odile", "Emeka", "Sigrid", "Nils", "Priya")
_LAST_B = ("ström", "ovic", "ardi", "elle", "mont", "sen", "auer", "ini", "ez", "wick", "hart", "quist", "ander")
_PLANS = ("Pro", "Basic", "Team", "Enterprise", "Starter", "Premium", "Plus", "Business", "Family", "Student")


def invented_companies(rng: random.Random, n: int) -> list[tuple[str, tuple[str, ...]]]:
    """``n`` distinct invented company names with their aliases (the short name)."""
    out: dict[str, tuple[str, ...]] = {}
    while len(out) < n:
        base = rng.choice(_SYL_A) + rng.choice(_SYL_B)
        full = f"{base} {rng.choice(_INDUSTRY)}{rng.choice(_LEGAL)}"
        out.setdefault(full, (base,))
    return list(out.items())


def invented_people(rng: random.Random, n: int) -> list[tuple[str, tuple[str, ...]]]:
    """``n`` distinct invented person names with aliases (surname form, initial form)."""
    out: dict[str, tuple[str, ...]] = {}
    while len(out) < n:
        first, last = rng.choice(_FIRST), rng.choice(_SYL_A) + rng.choice(_LAST_B)
        out.setdefault(f"{first} {last}", (f"{first[0]}. {last}", f"Dr. {first} {last}"))
    return list(out.items())


def plan_names(company: str, alias: str) -> list[tuple[str, tuple[str, ...]]]:
    """Plan/product subjects of an invented company ("Veltrix Pro plan")."""
    return [(f"{alias} {p} plan", (f"{p} plan of {alias}",)) for p in _PLANS]
