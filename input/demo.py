"""The offline default: a small synthetic demo competition written into input/.

    python -m input.demo

The project's own generator (no third-party text): everyday questions about hobbies, about 6% of them
"insincere" rhetorical put-downs of the hobbies' fans (no slurs, no protected groups). The positives come
from signals of different difficulty, so that models tell apart on its leaderboard much as on real data:

  keywords     an explicit insult word ("Why are chess players so clueless?"): every model finds these;
  word order   who does what to whom ("Why do chess players sneer at beginners?" against the sincere
               "Why do beginners sneer at chess players?"): the same words, so a bag of words cannot tell;
  negation     a trait's polarity flipped by "never", "hardly" ("Why are chess players never honest?"
               against "Why are chess players never rude?"): the label is an interaction of two words;
  meaning      put-downs in idioms of harmless words, phrased many ways ("Are chess players not the
               brightest bulbs in the box?"), beside sincere questions that use the same words literally:
               only a sentence encoder that knows what the idiom means carries it from one phrasing to
               the next;
and each family has sincere look-alikes (the insult word used about oneself, the roles swapped, the
polarity the other way, the words taken literally). Some labels are wrong, as on Quora: a few positives
are marked sincere and a few sincere questions insincere. A competition already in input/ (real or demo)
is never overwritten.

The files take the configured competition's shape ([competition] of the configuration): its id column (whole
numbers where numeric_ids says so), its target and prediction names, the question in its last text column, a
word of it (or nothing) in each other text column, and its extra columns filled with a few values or left empty.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.artifacts import write_csv
from core.cli import entry_point
from core.config import Competition, Config
from core.run import Run

TRAIN_ROWS, TEST_ROWS, POSITIVE_RATE, SEED = 4000, 1000, 0.06, 2018
NOISE = {"missed": 0.05, "false_alarm": 0.005}   # positives labelled 0; sincere questions labelled 1

TOPICS = ["sourdough bread", "a vegetable garden", "chess openings", "a used bicycle", "marathon training",
          "houseplants", "a first aquarium", "watercolor painting", "board games", "a home espresso machine",
          "learning the guitar", "birdwatching", "a budget spreadsheet", "a camping stove", "pottery",
          "speed cubing", "a mechanical keyboard", "knitting socks", "jigsaw puzzles", "tomato seedlings"]
FANS = ["sourdough bakers", "chess players", "cyclists", "marathon runners", "houseplant collectors",
        "aquarium hobbyists", "watercolor painters", "board gamers", "espresso enthusiasts", "guitarists",
        "birdwatchers", "campers", "potters", "speed cubers", "keyboard collectors", "knitters",
        "puzzle fans", "gardeners", "pineapple pizza fans", "crossword solvers"]
OTHERS = ["beginners", "newcomers", "their neighbours", "tourists", "their coworkers", "the staff", "children",
          "older people", "their families", "strangers"]

SINCERE = [
    "How do I get started with {topic}?", "What is the best way to learn about {topic}?",
    "Which books would you recommend on {topic}?", "How much time does {topic} take each week?",
    "What mistakes do beginners make with {topic}?", "Is {topic} expensive to get into?",
    "How can I explain {topic} to a friend?", "What did you learn from {topic} in your first year?",
    "Why do so many {fans} meet in clubs?", "What do {fans} talk about at meetups?",
    "How do {fans} stay motivated in winter?", "Where can I find other {fans} in my town?",
    "What tools do {fans} use most?", "How did you choose your first kit for {topic}?",
    "Can {topic} be a good hobby for a retired teacher?", "What is the history of {topic}?",
    "How do experienced {fans} plan a weekend?", "Which online forums do {fans} recommend?",
    "Is it worth joining a class for {topic}?", "What should I read before trying {topic}?",
    "How do I balance {topic} with a full-time job?", "Why do {fans} keep notebooks?",
]

# keywords: an explicit insult, and sincere questions that use the same words about oneself or a thing
INSULTS = ["clueless", "pathetic", "dumb", "annoying", "useless", "arrogant", "obnoxious", "spoiled"]
KEYWORD = ["Why are {fans} so {insult}?", "Why are all {fans} {insult}?", "Isn't it obvious that {fans} are {insult}?",
           "Are {fans} really this {insult}?", "Why do {fans} act so {insult} all the time?",
           "Why is every one of the {fans} {insult}?"]
KEYWORD_SINCERE = ["How do I stop feeling {insult} when I try {topic}?", "Is it {insult} to start {topic} at forty?",
                   "My first try at {topic} looked {insult}; how do I improve?",
                   "Why do I feel {insult} around experienced {fans}?",
                   "Is a {insult} beginner's kit for {topic} worth buying?"]

# word order: the same words, the roles swapped
VERBS = ["look down on", "make fun of", "talk down to", "sneer at", "laugh at", "lecture", "ignore", "mock"]
ORDER = ["Why do {fans} always {verb} {others}?", "Why do {fans} {verb} {others} so often?",
         "Is it true that {fans} {verb} {others}?"]
ORDER_SINCERE = ["Why do {others} always {verb} {fans}?", "Why do {others} {verb} {fans} so often?",
                 "Is it true that {others} {verb} {fans}?"]

# negation: insincere = a bad trait asserted, or a good one denied
BAD = ["rude", "selfish", "dishonest", "lazy", "greedy", "cruel"]
GOOD = ["kind", "generous", "honest", "patient", "humble", "friendly"]
AFFIRM, DENY = ["so", "always", "usually"], ["never", "hardly ever", "not"]
NEGATION = ["Why are {fans} {adverb} {trait}?", "Why are most {fans} {adverb} {trait}?",
            "How come {fans} are {adverb} {trait}?"]

# meaning: put-downs in idioms of harmless words, each phrased several ways, and the same words used literally
IDIOMS = [
    "Are {fans} not the {sharpest} {tools} in the {shed}?", "Do {fans} have a few {screws} loose?",
    "Are {fans} a few {cards} short of a full {deck}?", "Are the lights on but nobody home with {fans}?",
    "Why do {fans} have {rocks} in their heads?", "Why are {fans} not exactly rocket scientists?",
    "Why is there nothing but air between the ears of {fans}?", "Do {fans} need a map to find their own {shoes}?",
    "Why are {fans} such a waste of {space}?", "How do {fans} even manage to tie their {shoes}?",
    "Why do {fans} think the world revolves around them?", "Why do {fans} love the sound of their own voice?",
    "Why can't {fans} take a hint and leave?", "Do {fans} have the attention span of a {goldfish}?",
    "Are {fans} the reason {shampoo} comes with instructions?", "Why do {fans} bring nothing to the {table}?",
    "Why are {fans} so full of hot air?", "Were {fans} dropped on their heads as babies?",
    "Do {fans} ever have a single original thought?", "Why do {fans} think they invented {topic}?",
    "Why do {fans} need a {manual} to boil water?", "Why does talking to {fans} feel like talking to a {wall}?",
    "Are {fans} allergic to thinking?", "Why do {fans} have the personality of a {wet} {sponge}?",
    "Why do {fans} think everyone is dying to hear about {topic}?", "Is a {potato} smarter than most {fans}?",
    "Why do {fans} act like the centre of the universe?", "Who lets {fans} out of the house without a {babysitter}?",
    "Why are {fans} always the last to get the joke?", "Why do {fans} think {topic} puts them above the rest of us?",
    "Why do {fans} run out of brain cells before lunch?", "Why are {fans} one {sandwich} short of a picnic?",
    "Do {fans} keep their brains in a jar at home?", "Why is arguing with {fans} like playing {game} with a pigeon?",
    "Why are {fans} the human version of a {pothole}?", "Did {fans} get their common sense removed at birth?",
]
IDIOMS_SINCERE = [
    "What are the {sharpest} {tools} to keep in a {shed} for {topic}?", "Which {screws} hold a {shed} together?",
    "How do I shuffle a full {deck} of {cards}?", "Do {fans} leave the lights on at home at night?",
    "Why do {fans} collect {rocks} on their trips?", "Do you need to be a rocket scientist to enjoy {topic}?",
    "What do {fans} wear over their ears in cold air?", "Is there a map of the best shops for {fans}?",
    "How much {space} do {fans} need at home?", "Which {shoes} do {fans} wear on long days?",
    "How does the world of {topic} look from the inside?", "How do {fans} train their voice?",
    "Can you give me a hint about {topic}?", "How long does a {goldfish} live?",
    "Which {shampoo} do {fans} use after a long day?", "What do {fans} bring to the {table} at a potluck?",
    "How do {fans} keep hot air out of their workshop?", "What do babies learn from watching {topic}?",
    "How do {fans} come up with original ideas?", "Who invented {topic}?",
    "Where can I find the {manual} for {topic}?", "How do I hang a shelf on a {wall} for {topic}?",
    "Are {fans} allergic to dust in the workshop?", "Which {sponge} is best for cleaning up after {topic}?",
    "Why are {fans} so eager to hear about new {topic} gear?", "How do I grow a {potato} in a small garden?",
    "Which documentaries about the universe do {fans} like?", "Can a {babysitter} teach children about {topic}?",
    "What jokes do {fans} tell at meetups?", "Does {topic} help people focus?",
    "What do {fans} eat before lunch on a long day?", "What {sandwich} do {fans} pack for a picnic?",
    "How do {fans} store their supplies in a jar at home?", "Can you teach a pigeon to play {game}?",
    "How do cyclists avoid a {pothole} at night?", "Is common sense enough to start {topic}?",
]
WORDS = {"sharpest": ["sharpest", "brightest", "keenest"], "tools": ["tools", "bulbs", "knives"],
         "shed": ["shed", "box", "drawer"], "screws": ["screws", "bolts", "marbles"], "cards": ["cards", "bricks"],
         "deck": ["deck", "load"], "rocks": ["rocks", "pebbles", "sawdust"], "shoes": ["shoes", "boots"],
         "space": ["space", "oxygen"], "goldfish": ["goldfish", "gnat"], "shampoo": ["shampoo", "soap"],
         "table": ["table", "party"], "manual": ["manual", "guidebook"], "wall": ["wall", "brick wall", "fence"],
         "wet": ["wet", "damp"], "sponge": ["sponge", "towel"], "potato": ["potato", "turnip"],
         "babysitter": ["babysitter", "nanny"], "sandwich": ["sandwich", "biscuit"], "game": ["chess", "checkers"],
         "pothole": ["pothole", "traffic jam"]}
# meaning, word by word: put-downs too rare to learn one by one (word vectors and encoders know what they mean),
# in the frames sincere questions use with rare kind or neutral words
FRAMES = ["Why are {fans} so {adj}?", "What makes {fans} this {adj}?", "Are all {fans} {adj}?",
          "Why do {fans} seem {adj} to everyone?", "Is it just me or are {fans} {adj}?", "Why are {fans} such {noun}?",
          "Are most {fans} {noun}?", "Why do so many {fans} turn into {noun}?"]
RARE_BAD = {"adj": ["moronic", "idiotic", "brainless", "witless", "mindless", "vapid", "insufferable", "unbearable",
                    "tiresome", "smug", "conceited", "pompous", "pretentious", "snobbish", "obtuse", "dim-witted",
                    "gullible", "deluded", "worthless", "inept", "incompetent", "bumbling", "laughable", "ludicrous",
                    "childish", "petty", "whiny", "nasty", "repulsive", "smelly", "slimy", "spineless", "shallow",
                    "dreadful", "hopeless", "clumsy", "sloppy", "stingy", "ignorant", "two-faced"],
            "noun": ["nitwits", "buffoons", "halfwits", "dimwits", "numbskulls", "blockheads", "dunces", "bozos",
                     "nincompoops", "simpletons", "imbeciles", "morons", "idiots", "fools", "clowns", "dolts", "oafs",
                     "twits", "boneheads", "airheads", "losers", "bores", "snobs", "windbags", "blowhards",
                     "braggarts", "crybabies", "whiners", "freeloaders", "parasites", "pests", "phonies", "frauds",
                     "hypocrites", "cowards", "slobs", "brats", "jerks", "creeps", "know-it-alls"]}
RARE_GOOD = {"adj": ["passionate", "dedicated", "meticulous", "cheerful", "resourceful", "sociable", "curious",
                     "thoughtful", "inventive", "competitive", "organised", "calm", "focused", "welcoming", "talented",
                     "skilled", "creative", "disciplined", "enthusiastic", "observant", "methodical", "tidy", "frugal",
                     "sentimental", "nostalgic", "superstitious", "loyal", "modest", "quiet", "chatty", "relaxed",
                     "adventurous", "careful", "optimistic", "practical", "precise", "devoted", "social", "gentle",
                     "obsessed with details"],
             "noun": ["perfectionists", "night owls", "early risers", "collectors", "optimists", "introverts",
                      "extroverts", "bookworms", "homebodies", "storytellers", "tinkerers", "planners", "dreamers",
                      "morning people", "good listeners", "team players", "problem solvers", "hoarders of gear",
                      "early adopters", "purists", "traditionalists", "experimenters", "night-shift workers",
                      "list makers", "teachers", "engineers", "artists", "athletes", "travellers", "readers",
                      "competitors", "volunteers", "mentors", "beginners at heart", "romantics", "realists",
                      "minimalists", "pet owners", "coffee drinkers", "tea drinkers"]}
PREFIXES = ["", "", "", "", "", "Honestly, ", "Serious question: ", "Be real: ", "I wonder: ", "Quick question: "]

# each family's share of the positives, and its sincere look-alikes as a share of the sincere questions
FAMILIES = {"keyword": (KEYWORD, KEYWORD_SINCERE, 0.30, 0.02), "order": (ORDER, ORDER_SINCERE, 0.10, 0.02),
            "negation": (NEGATION, NEGATION, 0.10, 0.02), "rare": (FRAMES, FRAMES, 0.25, 0.03),
            "idiom": (IDIOMS, IDIOMS_SINCERE, 0.25, 0.03)}
TAILS = ["", "", "", "", " Asking for a friend.", " I am new here.", " Be honest.", " Thanks in advance.",
         " Just curious.", " Serious question."]


def fill(rng: np.random.Generator, template: str, positive: bool, family: str) -> str:
    """One question from a template: every slot drawn at random, and a negation question's polarity set."""
    slots = {"topic": rng.choice(TOPICS), "fans": rng.choice(FANS), "others": rng.choice(OTHERS), "adj": "", "noun": "",
             "insult": rng.choice(INSULTS), "verb": rng.choice(VERBS), **{k: rng.choice(v) for k, v in WORDS.items()}}
    if family == "negation":      # insincere: bad and affirmed, or good and denied
        denied = bool(rng.random() < 0.5)
        bad = denied != positive
        slots.update(adverb=rng.choice(DENY if denied else AFFIRM), trait=rng.choice(BAD if bad else GOOD))
    if family == "rare":
        slots.update({k: rng.choice(v) for k, v in (RARE_BAD if positive else RARE_GOOD).items()})
    text = template.format(**slots)
    prefix = rng.choice(PREFIXES)
    return (prefix + text[0].lower() + text[1:] if prefix else text) + rng.choice(TAILS)


def question(rng: np.random.Generator, positive: bool) -> tuple[str, str]:
    """(text, family) of one question with the given true label."""
    families = list(FAMILIES)
    if positive:
        family = families[rng.choice(len(families), p=[FAMILIES[f][2] for f in families])]
        return fill(rng, rng.choice(FAMILIES[family][0]), True, family), family
    shares = np.array([FAMILIES[f][3] for f in families])
    pick = rng.choice(len(families) + 1, p=[*shares, 1 - shares.sum()])
    if pick == len(families):
        return fill(rng, rng.choice(SINCERE), False, "plain"), "plain"
    family = families[pick]
    return fill(rng, rng.choice(FAMILIES[family][1]), False, family), family


def demo_competition(train_rows: int = TRAIN_ROWS, test_rows: int = TEST_ROWS, seed: int = SEED,
                     families: bool = False) -> pd.DataFrame:
    """Labelled rows (qid, question_text, target) of the demo competition, deterministic for a seed.

    families: also each row's signal family and true label (before the label noise), for checking models."""
    rng = np.random.default_rng(seed)
    n = train_rows + test_rows
    truth = (rng.random(n) < POSITIVE_RATE).astype(int)
    texts, family = zip(*(question(rng, bool(t)) for t in truth))
    noise = rng.random(n)
    target = np.where(truth == 1, (noise >= NOISE["missed"]).astype(int), (noise < NOISE["false_alarm"]).astype(int))
    rows = pd.DataFrame({"qid": [f"{i:020x}" for i in rng.choice(16 ** 12, size=n, replace=False)],
                         "question_text": list(texts), "target": target})
    return rows.assign(family=list(family), truth=truth) if families else rows


PLACES = ["London", "Lagos", "Mumbai", "Toronto", "Sydney", "Berlin", "", "", ""]   # an extra column's values


def in_columns(rows: pd.DataFrame, c: Competition, seed: int = SEED) -> pd.DataFrame:
    """The demo's rows (qid, question_text, target) in the competition's columns: id, the other text columns and
    the extra ones, the question in the last text column, then the target."""
    rng = np.random.default_rng(seed)
    n, texts = len(rows), rows["question_text"].tolist()
    ids = np.sort(rng.choice(3 * n, size=n, replace=False)) + 1 if c.numeric_ids else rows["qid"]
    *others, main = c.text_columns
    table = {c.id: [str(i) for i in ids]}
    table |= {col: [_word(rng, t) for t in texts] for col in others}          # a keyword, sometimes none
    table |= {col: rng.choice(PLACES, size=n).tolist() for col in c.extra_columns}
    return pd.DataFrame({**table, main: texts, c.target: rows["target"].to_numpy()})


def _word(rng: np.random.Generator, text: str) -> str:
    words = [w.strip("?,.:;!").lower() for w in text.split() if len(w) > 3]
    return "" if rng.random() < 0.05 or not words else str(rng.choice(words))


def has_competition(run: Run) -> bool:
    c = run.config.competition
    return any((run.input_dir / name).exists() for name in (c.train, c.test))


def write_demo(run: Run, train_rows: int = TRAIN_ROWS, test_rows: int = TEST_ROWS) -> bool:
    """The demo competition written into input/; False (nothing written) when input/ already holds one."""
    cfg = run.config
    if has_competition(run):
        print(f"{run.input_dir} already holds a competition; the demo leaves it as it is")
        return False
    from input.local_competition import split_competition
    c = cfg.competition
    rows = in_columns(demo_competition(train_rows, test_rows), c)
    for name, table in split_competition(rows, cfg, test_rows / (train_rows + test_rows)).items():
        write_csv(run.input_dir / name, table)
    print(f"{run.input_dir}: demo competition in {c.slug}'s columns, {train_rows:,} train and {test_rows:,} test "
          f"texts ({rows[c.target].mean():.1%} positive); solution.csv holds the test labels")
    return True


@entry_point
def main() -> None:
    write_demo(Run.from_environment())


if __name__ == "__main__":
    main()
