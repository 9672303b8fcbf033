"""The offline default: a small synthetic demo competition written into input/.

    python -m input.demo

The project's own generator (no third-party text): neutral everyday questions, about 6% of
them "insincere" rhetorical put-downs of hobbies and tastes (no slurs, no protected groups).
The signal is learnable but not a keyword lookup: some positives avoid the tell-tale words,
some negatives use them sincerely, and 1% of labels are flipped. A competition already in
input/ (real or demo) is never overwritten.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from core.artifacts import write_csv
from core.cli import entry_point
from core.config import Config, load_config
from core.paths import input_dir

TRAIN_ROWS, TEST_ROWS, POSITIVE_RATE, LABEL_NOISE, SEED = 3000, 1000, 0.06, 0.01, 2018

TOPICS = ["sourdough bread", "a vegetable garden", "chess openings", "a used bicycle", "marathon training",
          "houseplants", "a first aquarium", "watercolor painting", "board games", "a home espresso machine",
          "learning the guitar", "birdwatching", "a budget spreadsheet", "a camping stove", "pottery",
          "speed cubing", "a mechanical keyboard", "knitting socks", "jigsaw puzzles", "tomato seedlings"]
FANS = ["sourdough bakers", "chess players", "cyclists", "marathon runners", "houseplant collectors",
        "aquarium hobbyists", "watercolor painters", "board gamers", "espresso enthusiasts", "guitarists",
        "birdwatchers", "campers", "potters", "speed cubers", "keyboard collectors", "knitters",
        "puzzle fans", "gardeners", "pineapple pizza fans", "crossword solvers"]
SINCERE = [
    "How do I get started with {topic}?", "What is the best way to learn about {topic}?",
    "Which books would you recommend on {topic}?", "How much time does {topic} take each week?",
    "What mistakes do beginners make with {topic}?", "Is {topic} expensive to get into?",
    "How can I explain {topic} to a friend?", "What did you learn from {topic} in your first year?",
    "Why do so many {fans} meet in clubs?", "What do {fans} talk about at meetups?",
    "How do {fans} stay motivated in winter?", "Where can I find other {fans} in my town?",
    "Why does {topic} feel so annoying at first?", "Is it stupid to start {topic} at forty?",
]
INSINCERE = [
    "Why are {fans} so clueless about everything?", "Why do {fans} think they are smarter than everyone?",
    "Isn't it obvious that {fans} are pathetic?", "Why are all {fans} such annoying show-offs?",
    "Why do {fans} pretend {topic} is a real skill?", "Don't you agree that {fans} ruin every party?",
    "Why should anyone listen to {fans} when they never shut up?", "Are {fans} really this dumb or just pretending?",
    "Why does every one of the {fans} lie about {topic}?", "How can {fans} be proud of something so useless?",
]
TAILS = ["", "", "", " Asking for a friend.", " I am new here.", " Be honest.", " Thanks in advance."]


def question(rng: np.random.Generator, templates: list[str]) -> str:
    text = rng.choice(templates).format(topic=rng.choice(TOPICS), fans=rng.choice(FANS))
    return text + rng.choice(TAILS)


def demo_competition(train_rows: int = TRAIN_ROWS, test_rows: int = TEST_ROWS, seed: int = SEED) -> pd.DataFrame:
    """Labelled rows (qid, question_text, target) of the demo competition, deterministic for a seed."""
    rng = np.random.default_rng(seed)
    n = train_rows + test_rows
    target = (rng.random(n) < POSITIVE_RATE).astype(int)
    texts = [question(rng, INSINCERE if t else SINCERE) for t in target]
    flip = rng.random(n) < LABEL_NOISE
    return pd.DataFrame({"qid": [f"{i:020x}" for i in rng.choice(16 ** 12, size=n, replace=False)],
                         "question_text": texts, "target": np.where(flip, 1 - target, target)})


def has_competition(cfg: Config) -> bool:
    return any((input_dir() / name).exists() for name in (cfg.competition.train, cfg.competition.test))


@entry_point
def main() -> None:
    cfg = load_config()
    if has_competition(cfg):
        print(f"{input_dir()} already holds a competition; the demo leaves it as it is")
        return
    from input.local_competition import split_competition
    c = cfg.competition
    rows = demo_competition().rename(columns={"qid": c.id, "question_text": c.text, "target": c.target})
    for name, table in split_competition(rows, cfg, TEST_ROWS / (TRAIN_ROWS + TEST_ROWS)).items():
        write_csv(input_dir() / name, table)
    print(f"{input_dir()}: demo competition, {TRAIN_ROWS:,} train and {TEST_ROWS:,} test questions "
          f"({rows[c.target].mean():.1%} positive); solution.csv holds the test labels")


if __name__ == "__main__":
    main()
