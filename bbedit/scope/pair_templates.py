"""Hand-written phrasings of relations, for generating scope-gate training pairs.

Every form has ``{}`` where the subject goes. ``RELATIONS`` maps a relation key to its
entity group and its forms (questions and statement prefixes); ParaRel's own patterns
are added to the Wikidata ones when the pair generator reads them. ``CLOSE`` lists
relations that are easy to confuse (CEO vs CTO, director vs cast, occupation vs
position held), used for the hardest negatives. The synthetic company/person/product
relations describe the shape of user edits; their entities are invented
(:func:`invented_companies`, :func:`invented_people`). :func:`labels_differ` reads the Wikidata
labels two prompts name, for the gate.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

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
    ("P108", "P463"), ("P937", "P108"), ("P37", "P36"),
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

# Relations asked with the same words, whose objects are the same kind of thing: never each other's
# negatives either. ParaRel phrases manufacturer and developer alike ("[X] is developed by [Y]" is a
# pattern of both), as it does a work's original language and its language.
INTERCHANGEABLE: tuple[tuple[str, str], ...] = (("P176", "P178"), ("P364", "P407"))

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


# --- Wikidata property labels and the zsRE questions that ask them ---------------------------------
# KnowEdit-style prompts name a relation by its Wikidata label: "The father of {} is", "{} father". Each
# relation key gets those two forms from its labels; zsRE's training questions are read as the relation
# their words name (:func:`zsre_relation`), so that a question and a label form of one relation are
# each other's paraphrases, and of two relations each other's hard negatives.

# relations zsRE asks about that have no entry above: key -> (group, forms)
RELATIONS.update({
    "P569": ("person", ("When was {} born?", "What is the date of birth of {}?", "{} was born on")),
    "P570": ("person", ("When did {} die?", "What is the date of death of {}?", "{} died on")),
    "P509": ("person", ("What was the cause of death of {}?", "What did {} die of?", "{} died of")),
    "P26": ("person", ("Who is {} married to?", "Who is the spouse of {}?", "{}'s wife is")),
    "P3373": ("person", ("Who is the sibling of {}?", "Who is {}'s sister?", "{}'s brother is")),
    "P40": ("person", ("Who is the child of {}?", "Who is {}'s son?", "{}'s daughter is")),
    "P21": ("person", ("What is the gender of {}?", "Is {} male or female?", "{}'s sex is")),
    "P172": ("person", ("What is the ethnic group of {}?", "Which ethnic group does {} belong to?")),
    "P69": ("person", ("Where was {} educated?", "Which university did {} attend?", "{} studied at",
                       "What college did {} go to?")),
    "P54": ("person", ("Which team does {} play for?", "{} plays for the team", "What club does {} play for?")),
    "P118": ("org", ("Which league does {} play in?", "{} competes in the league", "What league is {} in?")),
    "P115": ("org", ("What is the home venue of {}?", "Where does {} play its home games?", "The stadium of {} is")),
    "P412": ("person", ("What is the voice type of {}?", "What voice does {} sing in?", "{} sings as a")),
    "P607": ("person", ("Which war did {} fight in?", "In which conflict did {} serve?", "{} fought in the")),
    "P241": ("person", ("Which military branch did {} serve in?", "{} served in the")),
    "P410": ("person", ("What was the military rank of {}?", "{} held the rank of")),
    "P166": ("person", ("What award did {} receive?", "Which prize was {} given?", "{} was awarded the")),
    "P102": ("person", ("Which political party is {} a member of?", "{} belongs to the party")),
    "P53": ("person", ("Which noble family was {} from?", "What dynasty does {} belong to?")),
    "P551": ("person", ("Where does {} live?", "In which city did {} reside?", "{} lives in")),
    "P171": ("taxon", ("Which family does {} belong to?", "What is the parent taxon of {}?", "{} is a genus of the family",
                       "What genus is {} part of?")),
    "P105": ("taxon", ("What is the taxon rank of {}?", "Is {} a genus or a species?", "The taxonomic rank of {} is")),
    "P141": ("taxon", ("What is the conservation status of {}?", "How endangered is {}?",
                       "The IUCN status of {} is")),
    "P703": ("taxon", ("In which species is {} found?", "Which organism has {}?", "{} is found in the species")),
    "P59": ("place", ("Which constellation is {} in?", "In what constellation is {} located?",
                      "{} is part of the constellation")),
    "P376": ("place", ("On which astronomical body is {} located?", "On what planet or moon is {}?")),
    "P206": ("place", ("Which body of water is {} next to?", "{} lies on the shore of")),
    "P403": ("place", ("Where does {} flow into?", "What is the mouth of {}?", "{} flows into the")),
    "P4552": ("place", ("Which mountain range is {} in?", "{} is part of the mountain range")),
    "P177": ("place", ("What does {} cross?", "Which river does {} span?", "{} crosses the")),
    "P931": ("place", ("Which place does {} serve?", "What city is served by {}?", "{} serves the city of")),
    "P84": ("place", ("Who was the architect of {}?", "Who designed the building {}?", "{} was designed by the architect")),
    "P149": ("place", ("What is the architectural style of {}?", "In what style is {} built?",
                       "{} is built in the style of")),
    "P571": ("org", ("When was {} founded?", "In what year was {} established?", "{} was founded in the year")),
    "P576": ("org", ("When was {} dissolved?", "In what year did {} end?", "{} ceased to exist in")),
    "P452": ("org", ("What industry is {} in?", "{} operates in the industry of", "Which sector is {} part of?")),
    "P749": ("org", ("What is the parent organization of {}?", "Which company is {} a subsidiary of?")),
    "P137": ("product", ("Who operates {}?", "Which company operates {}?", "{} is operated by")),
    "P123": ("book", ("Who published {}?", "Which company published {}?", "{} was published by")),
    "P179": ("book", ("Which series is {} part of?", "{} is a book in the series", "To which series does {} belong?")),
    "P1441": ("book", ("In which work does {} appear?", "Which fictional work is {} a character in?",
                       "{} is a character in")),
    "P1080": ("book", ("Which fictional universe is {} from?", "{} belongs to the fictional universe of")),
    "P144": ("book", ("What is {} based on?", "Which work was {} adapted from?", "{} is based on")),
    "P110": ("book", ("Who illustrated {}?", "The illustrator of {} is", "{} was illustrated by")),
    "P272": ("film", ("Which company produced {}?", "What is the production company of {}?",
                      "{} was produced by the studio")),
    "P750": ("film", ("Who distributed {}?", "What company distributed {}?", "{} was distributed by")),
    "P277": ("product", ("What programming language is {} written in?", "In which language was {} programmed?",
                         "{} is programmed in")),
    "P61": ("product", ("Who discovered {}?", "Who invented {}?", "{} was discovered by")),
    "P170": ("product", ("Who created {}?", "Who is the creator of {}?", "{} was created by")),
    "P287": ("product", ("Who designed {}?", "Who is the designer of {}?", "{} was designed by")),
    "P186": ("product", ("What material is {} made of?", "What is {} made from?", "{} is made of")),
    "P289": ("product", ("What class of ship is {}?", "What vessel class does {} belong to?", "{} is a ship of the class")),
    "P729": ("product", ("When did {} enter service?", "In what year was {} commissioned?", "{} entered service in")),
    "P619": ("product", ("When was {} launched?", "What is the launch date of {}?", "{} was launched on")),
    "P400": ("product", ("On which platform does {} run?", "What console is {} for?", "{} was released for the")),
    "P175": ("product", ("Who performed {}?", "Who is the performer of {}?", "{} was performed by")),
    "P870": ("product", ("Which instrument is {} written for?", "{} is a piece for the instrument")),
})

# Wikidata labels of the relation keys (the names KnowEdit's prompts use)
LABELS: dict[str, tuple[str, ...]] = {
    "P19": ("place of birth",), "P20": ("place of death",), "P27": ("country of citizenship",),
    "P101": ("field of work",), "P103": ("native language",), "P106": ("occupation",), "P108": ("employer",),
    "P1303": ("instrument",), "P136": ("genre",), "P140": ("religion",),
    "P1412": ("languages spoken, written or signed",), "P264": ("record label",), "P39": ("position held",),
    "P413": ("position played on team / speciality",), "P463": ("member of",), "P937": ("work location",),
    "P36": ("capital",), "P1376": ("capital of",), "P37": ("official language",), "P30": ("continent",),
    "P17": ("country",), "P131": ("located in the administrative territorial entity",),
    "P47": ("shares border with",), "P530": ("diplomatic relation",), "P190": ("twinned administrative body",),
    "P138": ("named after",), "P361": ("part of",), "P159": ("headquarters location",),
    "P740": ("location of formation",), "P127": ("owned by",), "P1001": ("applies to jurisdiction",),
    "P176": ("manufacturer",), "P178": ("developer",), "P495": ("country of origin",),
    "P449": ("original broadcaster", "original network"), "P364": ("original language of film or TV show",),
    "P407": ("language of work or name",), "P279": ("subclass of",), "director": ("director",),
    "cast": ("cast member",), "producer": ("producer",), "screenwriter": ("screenwriter",), "composer": ("composer",),
    "author": ("author",), "publisher": ("publisher",), "father": ("father",), "mother": ("mother",),
    "spouse": ("spouse",), "sport": ("sport",), "birthdate": ("date of birth",), "color": ("color",),
    "P569": ("date of birth",), "P570": ("date of death",), "P509": ("cause of death",), "P26": ("spouse",),
    "P3373": ("sibling",), "P40": ("child",), "P21": ("sex or gender",), "P172": ("ethnic group",),
    "P69": ("educated at",), "P54": ("member of sports team",), "P118": ("league",), "P115": ("home venue",),
    "P412": ("voice type",), "P607": ("conflict",), "P241": ("military branch",), "P410": ("military rank",),
    "P166": ("award received",), "P102": ("member of political party",), "P53": ("family",), "P551": ("residence",),
    "P171": ("parent taxon",), "P105": ("taxon rank",), "P141": ("IUCN conservation status",),
    "P703": ("found in taxon",), "P59": ("constellation",), "P376": ("located on astronomical body",),
    "P206": ("located in or next to body of water",), "P403": ("mouth of the watercourse",),
    "P4552": ("mountain range",), "P177": ("crosses",), "P931": ("place served by transport hub",),
    "P84": ("architect",), "P149": ("architectural style",), "P571": ("inception",), "P576": ("dissolved, abolished or demolished date",),
    "P452": ("industry",), "P749": ("parent organization",), "P137": ("operator",), "P123": ("publisher",),
    "P179": ("part of the series",), "P1441": ("present in work",), "P1080": ("from narrative universe",),
    "P144": ("based on",), "P110": ("illustrator",), "P272": ("production company",), "P750": ("distributed by",),
    "P277": ("programmed in",), "P61": ("discoverer or inventor",), "P170": ("creator",), "P287": ("designed by",),
    "P186": ("made from material",), "P289": ("vessel class",), "P729": ("service entry",), "P619": ("UTC date of spacecraft launch",),
    "P400": ("platform",), "P175": ("performer",), "P870": ("instrumentation",),
}


def label_forms(key: str) -> tuple[str, ...]:
    """KnowEdit's two forms of a relation named by its Wikidata label: "The {label} of {} is", "{} {label}"."""
    return tuple(f for label in LABELS.get(key, ()) for f in (f"The {label} of {{}} is", f"{{}} {label}"))


# zsRE question (its subject as "{}", lower-cased) -> the relation it asks; first match wins, the more
# specific patterns first ("" claims a question for no relation: a date of something the keys do not
# hold). Questions no pattern claims keep a relation of their own (their template).
ZSRE_RULES: tuple[tuple[str, str], ...] = (
    (r"(date|year|when).*(discover|launch|open|introduc|creat|releas|took place|take place)|point in time", ""),
    (r"cause of death|what killed|caused .*death|disease|died of|accident or suicide|medical", "P509"),
    (r"(date|year|when|time).*(death|died|die\b)|\bdied? (on|in the year)|when did \{\} die|year \{\} died|death .*occur",
     "P570"),
    (r"(date|year|when).*\bborn|birth ?date|date of birth|born on", "P569"),
    (r"\bdie[ds]?\b|death|live when he died", "P20"),
    (r"birth ?place|place of birth|city of birth|\bborn\b|birth country|city was the birthplace", "P19"),
    (r"mother tongue|native language", "P103"),
    (r"official language", "P37"),
    (r"programming language|programmed", "P277"),
    (r"mother|born to|\blady\b", "mother"),
    (r"father|fathered|paternal|male parent|\bdad\b", "father"),
    (r"spouse|married|\bwife\b|husband", "spouse"),
    (r"sister|brother|sibling", "P3373"),
    (r"\bchild|\bson\b|daughter", "P40"),
    (r"gender|\bsex\b|male or female", "P21"),
    (r"ethnic", "P172"),
    (r"voice|tone does \{\} sing", "P412"),
    (r"noble family|family lineage|dynasty", "P53"),
    (r"taxon rank|taxonomic rank", "P105"),
    (r"famil|genus|parent taxon", "P171"),
    (r"endangered|conservation status|iucn|ecological status", "P141"),
    (r"species|living being|organism", "P703"),
    (r"constellation", "P59"),
    (r"celestial body|moon or planet|planet|astronomical", "P376"),
    (r"military branch|branch of the military|service branch", "P241"),
    (r"military rank|\brank\b", "P410"),
    (r"\bwar\b|conflict|battle", "P607"),
    (r"fictional universe|narrative universe", "P1080"),
    (r"fictional work|character named|appearance of|which show|show is \{\}|\bappears? in|present in", "P1441"),
    (r"based on|basis of|adapted from", "P144"),
    (r"illustrat", "P110"),
    (r"production company|studio", "P272"),
    (r"distribut", "P750"),
    (r"original network|network|channel|broadcast|\baired\b", "P449"),
    (r"screenwriter|screenplay|script", "screenwriter"),
    (r"direct", "director"),
    (r"\bcast\b|star of|starred|\bstar\b|actor|actress", "cast"),
    (r"compos", "composer"),
    (r"producer|\bproduced\b", "producer"),
    (r"publish", "P123"),
    (r"record label|\blabel\b", "P264"),
    (r"series", "P179"),
    (r"author|\bwrote\b|written by", "author"),
    (r"language", "P407"),
    (r"architectural style|style of architecture|\bstyle\b", "P149"),
    (r"architect", "P84"),
    (r"design", "P287"),
    (r"discover|invent", "P61"),
    (r"creator|created by|who created", "P170"),
    (r"develop", "P178"),
    (r"manufactur|made by|company made|company built|built by|which company made", "P176"),
    (r"perform", "P175"),
    (r"instrument", "P870"),
    (r"named after|named for", "P138"),
    (r"league", "P118"),
    (r"stadium|home games|home ground|home venue|\bvenue\b", "P115"),
    (r"position .*play|which position does \{\} play|in football, which position", "P413"),
    (r"position (was )?held|position that \{\} held|title is held|office", "P39"),
    (r"\bteam\b|\bclub\b", "P54"),
    (r"college|universit|educated|school|alma mater|\bstud(y|ied)\b", "P69"),
    (r"occupation|career|profession|for a living|\bjob\b", "P106"),
    (r"\bsport\b", "sport"),
    (r"genre|kind of music|type of music", "P136"),
    (r"award|prize|honou?r", "P166"),
    (r"political party|\bparty\b", "P102"),
    (r"religio", "P140"),
    (r"citizen|nationality|national identity", "P27"),
    (r"country of origin|country did \{\} originate", "P495"),
    (r"headquarter", "P159"),
    (r"parent company|parent organi|subsidiary", "P749"),
    (r"\bowns?\b|\bowned\b|owner", "P127"),
    (r"operat", "P137"),
    (r"industry|sector", "P452"),
    (r"airport|transport hub|serve[sd]?\b", "P931"),
    (r"body of water|\blake\b|\bsea\b|\bshore\b", "P206"),
    (r"mouth|flows? into|tributary|river .* connect", "P403"),
    (r"mountain range|\brange\b", "P4552"),
    (r"\bcross", "P177"),
    (r"continent", "P30"),
    (r"border", "P47"),
    (r"twin|sister city", "P190"),
    (r"capital of \{\}|\{\}'s capital", "P36"),
    (r"\{\} the capital", "P1376"),
    (r"vessel|submarine|\bship\b|class of", "P289"),
    (r"material|made of|made from", "P186"),
    (r"entered service|commissioned|service entry", "P729"),
    (r"launch", "P619"),
    (r"platform|console", "P400"),
    (r"(city|where|place|country|town).*(formed|founded|established|originat)|city of origin", "P740"),
    (r"founded|formed|established|inception|\bstart", "P571"),
    (r"\bend\b|ended|dissolved|ceased|final year|ending year|abolished|demolished", "P576"),
    (r"\blives?\b|\blived\b|resid|home city|home town|hometown", "P551"),
    (r"employ|work for|works for|workplace", "P108"),
    (r"state|province|county|region|administrative|district", "P131"),
    (r"country", "P17"),
    (r"member of", "P463"),
    (r"\bpart of\b", "P361"),
)
_ZSRE_RULES = tuple((re.compile(p), key) for p, key in ZSRE_RULES)


def zsre_relation(template: str) -> str | None:
    """The relation key a zsRE question template (its subject as ``{}``) asks, or None if no rule says."""
    t = " ".join(template.lower().split())
    return next((key or None for pat, key in _ZSRE_RULES if pat.search(t)), None)


CLOSE += (
    ("P569", "P570"), ("P570", "P509"), ("P20", "P509"), ("P19", "P569"), ("P20", "P570"), ("father", "P40"),
    ("mother", "P40"), ("spouse", "P3373"), ("father", "spouse"), ("P3373", "P40"), ("P54", "P118"),
    ("P54", "P115"), ("P413", "P54"), ("P118", "P115"), ("P171", "P105"), ("P171", "P703"), ("P141", "P105"),
    ("P84", "P149"), ("P84", "P287"), ("P287", "P176"), ("P170", "P61"), ("P170", "author"), ("P123", "author"),
    ("P272", "P750"), ("P272", "producer"), ("P449", "P272"), ("P179", "P1441"), ("P1441", "P1080"),
    ("P144", "author"), ("P110", "author"), ("P571", "P576"), ("P571", "P740"), ("P749", "P127"),
    ("P127", "P137"), ("P729", "P619"), ("P289", "P176"), ("P241", "P410"), ("P607", "P241"), ("P69", "P108"),
    ("P551", "P19"), ("P551", "P937"), ("P102", "P463"), ("P166", "P106"), ("P277", "P178"), ("P400", "P178"),
    ("P175", "composer"), ("P870", "P1303"), ("P59", "P361"), ("P131", "P17"), ("P17", "P27"), ("P412", "P1303"),
)

_BY_LABEL = {label.casefold(): key for key, labels in LABELS.items() for label in labels}
_LABEL_FORM = (re.compile(r"the (?:name of the )?(.+?) of \{\} (?:is|are|was)"), re.compile(r"\{\} (.+)"))


def relation_of(prompt: str, subject: str) -> str | None:
    """The relation key a prompt about ``subject`` asks: a Wikidata label in KnowEdit's forms ("The
    father of {} is", "{} father"), else what :func:`zsre_relation` reads in its words; None when
    neither says (or the prompt does not name the subject)."""
    if not subject or subject not in prompt:
        return None
    t = " ".join(prompt.replace(subject, "{}", 1).split()).rstrip(" ?.").casefold()
    label = _form_label(t)
    return _BY_LABEL[label] if label in _BY_LABEL else zsre_relation(t)


def _form_label(template: str) -> str | None:
    """The label a lower-cased prompt with ``{}`` for its subject names in one of KnowEdit's forms (the
    forms exclude each other: one opens with "the", the other with the subject), known or not."""
    for pat in _LABEL_FORM:
        if m := pat.fullmatch(template):
            return m.group(1)
    return None


# Wikidata property labels of relations no key above holds: KnowEdit-style prompts about the same subject
# that ask something else ("{} legal form", "The color of {} is") are negatives for every fact.
OTHER_LABELS: tuple[str, ...] = (
    "given name", "family name", "legal form", "color", "cell component", "molecular function",
    "biological process", "ortholog", "located in time zone", "population", "area", "elevation above sea level",
    "coordinate location", "official website", "described by source", "different from", "said to be the same as",
    "instance of", "topic's main category", "category of associated people", "height", "mass", "length", "width",
    "number of children", "number of episodes", "number of seasons", "duration", "publication date", "start time",
    "end time", "point in time", "date of official opening", "time of discovery or invention", "location of discovery",
    "site of astronomical discovery", "apparent magnitude", "distance from Earth", "radius", "temperature",
    "manner of death", "place of burial", "handedness", "eye color", "hair color", "blood type", "native label",
    "name in native language", "nickname", "pseudonym", "academic degree", "doctoral advisor", "doctoral student",
    "student of", "student", "influenced by", "notable work", "movement", "partner in business or sport",
    "unmarried partner", "relative", "godparent", "stepparent", "head of government", "head of state",
    "legislative body", "currency", "anthem", "motto text", "flag", "coat of arms", "emblem", "demonym",
    "inception", "significant event", "participant in", "winner", "sponsor", "league level", "ranking",
    "number of participants", "tracklist", "main subject", "characters", "narrative location", "filming location",
    "set in period", "box office", "cost", "costume designer", "production designer", "film editor",
    "director of photography", "voice actor", "original film format", "color process", "aspect ratio",
    "copyright status", "license", "software version identifier", "operating system", "file format", "readable file format",
    "source code repository", "stock exchange", "ticker symbol", "chief executive officer", "chairperson",
    "founded by", "number of employees", "revenue", "net profit", "total assets", "product or material produced",
    "brand", "subsidiary", "board member", "director / manager", "member count", "website account on",
    "social media followers", "Commons category", "image", "logo image", "signature", "audio recording of the subject's spoken voice",
    "lake inflows", "lake outflow", "drainage basin", "watershed area", "tributary", "length of the watercourse",
    "highest point", "lowest point", "located in protected area", "heritage designation", "structural engineer",
    "main building contractor", "architecture firm", "floors above ground", "maintained by", "connecting line",
    "adjacent station", "number of platform tracks", "track gauge", "owned by", "significant person",
    "religious order", "diocese", "patron saint", "wears", "sports discipline competed in", "country for sport",
    "mass (of object)", "drafted by", "draft pick number", "coach of sports team", "captain", "number of points/goals/set scored",
    "conservation status", "taxon common name", "endemic to", "habitat", "diet", "gestation period", "life expectancy",
    "encoded by", "genomic start", "chromosome", "strand orientation", "physically interacts with", "medical condition",
    "symptoms and signs", "drug used for treatment", "health specialty", "risk factor", "genetic association",
)


# --- Two prompts that each name their relation by a Wikidata label ------------------------------------
# "The place of birth of X is" and "The sex or gender of X is" (KnowEdit's form for recent and
# counterfactual Wikidata facts) name two different properties outright; no paraphrase of one is the other.
# Other names for some of these properties in the same form, from ParaRel's patterns ("The mother tongue of
# [X] is [Y].") and counterfact-train's prompts ("The twin city of {} is"): a query in one form is about an
# edit in another. Vaguer words ("language", "location", "affiliation") name no one property, so a prompt
# using them is never told apart by its label.
LABEL_SYNONYMS: dict[str, tuple[str, ...]] = {
    "P101": ("domain of activity", "domain of work", "expertise"), "P103": ("mother tongue",),
    "P106": ("profession",), "P36": ("capital city",), "P364": ("original language",), "P190": ("twin city",),
    "P140": ("official religion",),
}


def _label_keys() -> dict[str, frozenset[str]]:
    """Each known label (lower-cased) -> the relation keys that hold it; a label of :data:`OTHER_LABELS`
    is its own key."""
    keys: dict[str, set[str]] = {}
    for key, labels in (*LABELS.items(), *LABEL_SYNONYMS.items()):
        for label in labels:
            keys.setdefault(label.casefold(), set()).add(key)
    for label in OTHER_LABELS:
        keys.setdefault(label.casefold(), set()).add("label:" + label.casefold())
    return {label: frozenset(k) for label, k in keys.items()}


_LABEL_KEYS = _label_keys()


def named_label(prompt: str, names: Sequence[str]) -> str | None:
    """The Wikidata property label ``prompt`` asks about one of ``names`` (a subject and its aliases)
    in KnowEdit's label forms ("The father of {} is", "The name of the father of {} is", "{} father"),
    lower-cased; None when the prompt is not in those forms or the label is not one this module knows
    (:data:`LABELS`, :data:`LABEL_SYNONYMS`, :data:`OTHER_LABELS`): "The mascot of {} is" names none."""
    low = " ".join(prompt.split()).rstrip(" ?.").casefold()
    for name in sorted((n for n in names if n and n.strip()), key=len, reverse=True):
        key = " ".join(name.split()).casefold()
        if key not in low:
            continue
        label = _form_label(low.replace(key, "{}", 1))
        if label in _LABEL_KEYS:
            return label
    return None


def labels_differ(query: str, prompt: str, names: Sequence[str]) -> tuple[str, str] | None:
    """(the query's label, the prompt's label) when both name a Wikidata property of the subject
    (:func:`named_label`) and the two are different properties (no relation key holds both labels:
    "original network" and "original broadcaster" are one); None otherwise."""
    a, b = named_label(query, names), named_label(prompt, names)
    if a is None or b is None or _LABEL_KEYS[a] & _LABEL_KEYS[b]:
        return None
    return a, b


# An office or a role held by one person at a time, and the words that pick another holder than the
# present one ("the first president", "the former CEO", "the next coach"): "Who was the first prime
# minister of the UK?" does not ask the edit "Who is the prime minister of the UK?".
_ROLE = (r"vice[- ]president|president|prime minister|minister|chancellor|premier|king|queen|monarch|emperor|"
         r"empress|pope|mayor|governor|ceo|cto|cfo|coo|chief executive(?: officer)?|chair(?:man|woman|person)?|"
         r"head coach|coach|manager|captain|owner|husband|wife|spouse|leader|secretary[- ]general|director|editor")
_HOLDER = (r"first|last|former|previous|past|next|founding|incoming|outgoing|future|ex|second|third|fourth|"
           r"fifth|sixth|seventh|eighth|ninth|tenth|\d+(?:st|nd|rd|th)")
_ROLE_RE = re.compile(rf"\b(?:(?P<q>{_HOLDER})[\s-]+(?:(?!(?:{_ROLE})\b)[a-z'-]+\s+)?)?(?P<r>{_ROLE})s?\b",
                      re.IGNORECASE)


def _roles(text: str, names: Sequence[str]) -> dict[str, set[str]]:
    """role -> the words choosing its holder ("" for the present one), outside the subject's names."""
    for name in sorted((n for n in names if n and n.strip()), key=len, reverse=True):
        text = re.sub(re.escape(name), " ", text, flags=re.IGNORECASE)
    out: dict[str, set[str]] = {}
    for m in _ROLE_RE.finditer(text):
        role = " ".join(m.group("r").casefold().replace("-", " ").split())
        out.setdefault(role, set()).add((m.group("q") or "").casefold())
    return out


def roles_differ(query: str, prompt: str, names: Sequence[str] = ()) -> tuple[str, str] | None:
    """("first president", "president") when the query and the prompt ask about the same office of the
    subject but not the same holder: one names another holder than the present one ("first", "former",
    "next", "2nd") and the other does not, or another one. None otherwise (no office in common)."""
    a, b = _roles(query, names), _roles(prompt, names)
    for role in sorted(a.keys() & b.keys()):
        if not a[role] & b[role]:
            said = sorted(a[role])[0], sorted(b[role])[0]
            return tuple(f"{q} {role}".strip() for q in said)  # type: ignore[return-value]
    return None


def rule_differs(query: str, prompt: str, names: Sequence[str]) -> tuple[str, tuple[str, str]] | None:
    """Why the gate's rules put an edit out of scope of ``query``, as (the rule, the two things that
    differ): ("labels_differ", (query's label, prompt's label)) from :func:`labels_differ`, else
    ("roles_differ", (query's office, prompt's office)) from :func:`roles_differ`; None when neither says."""
    if (labels := labels_differ(query, prompt, names)) is not None:
        return "labels_differ", labels
    if (roles := roles_differ(query, prompt, names)) is not None:
        return "roles_differ", roles
    return None
