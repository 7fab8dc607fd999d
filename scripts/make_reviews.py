"""Make presets/data/reviews/, the small offline text dataset the `transformer-text` preset reads.

1,000 short film reviews, 500 positive and 500 negative, one text file each in a folder per class
(the layout `text:DIR` reads). They are generated — written by this script from templates, with a
fixed seed, so the data carry no licence but the project's own — and are made to need more than
counting words: a negated phrase ("was not dull") means the opposite of its words, a review that
turns with "but" is decided by its last clause, and neutral sentences surround the verdict.

    python scripts/make_reviews.py
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "presets" / "data" / "reviews"
PER_CLASS = 500
SEED = 2024

SUBJECTS = [
    "the film",
    "this movie",
    "the plot",
    "the acting",
    "the soundtrack",
    "the ending",
    "the cast",
    "the script",
    "the direction",
    "the pacing",
    "the dialogue",
    "the photography",
    "the story",
    "the lead performance",
    "the second half",
    "the opening scene",
]
GOOD = [
    "wonderful",
    "brilliant",
    "moving",
    "gripping",
    "charming",
    "superb",
    "delightful",
    "clever",
    "beautiful",
    "memorable",
    "funny",
    "touching",
    "sharp",
    "excellent",
    "thrilling",
    "warm",
]
BAD = [
    "dull",
    "boring",
    "clumsy",
    "tedious",
    "awful",
    "predictable",
    "weak",
    "messy",
    "forgettable",
    "painful",
    "silly",
    "flat",
    "lifeless",
    "confusing",
    "slow",
    "bland",
]
ADVERBS = ["", "", "truly ", "really ", "quite ", "rather ", "very ", "simply "]
NEUTRAL = [
    "I watched it on a rainy sunday.",
    "My friends recommended it to me.",
    "It runs a little over two hours.",
    "I saw it in a small cinema downtown.",
    "The trailer had made me curious.",
    "I went in knowing nothing about it.",
    "It is based on a novel I have not read.",
    "We rented it for a quiet evening at home.",
    "The theatre was half empty.",
    "It came out last spring.",
]
GOOD_CLOSERS = [
    "I would happily watch it again.",
    "Highly recommended.",
    "It is worth every minute.",
    "I left the cinema smiling.",
    "One of the best this year.",
]
BAD_CLOSERS = [
    "I would not watch it again.",
    "Not recommended.",
    "It was a waste of an evening.",
    "I nearly left before the end.",
    "One of the worst this year.",
]


def clause(rng: random.Random, positive: bool) -> str:
    """One judgement: plain ("the plot was clever") or negated ("the plot was not dull")."""
    subject = rng.choice(SUBJECTS)
    if rng.random() < 0.3:  # a negated word of the other side
        word = rng.choice(BAD if positive else GOOD)
        return f"{subject} was not {word}"
    word = rng.choice(GOOD if positive else BAD)
    return f"{subject} was {rng.choice(ADVERBS)}{word}"


def review(rng: random.Random, positive: bool) -> str:
    """Several sentences whose verdict is `positive`, among neutral ones: 40 to 120 words."""
    sentences = []
    for _ in range(rng.randint(3, 6)):
        if rng.random() < 0.4:
            sentences.append(rng.choice(NEUTRAL))
        elif rng.random() < 0.3:  # it turns: the clause after "but" decides
            sentences.append(f"{clause(rng, not positive).capitalize()}, but {clause(rng, positive)}.")
        else:
            sentences.append(f"{clause(rng, positive).capitalize()}.")
    if not any(" was " in s for s in sentences):
        sentences.append(f"{clause(rng, positive).capitalize()}.")
    sentences.append(rng.choice(GOOD_CLOSERS if positive else BAD_CLOSERS))
    return " ".join(sentences) + "\n"


def main() -> None:
    rng = random.Random(SEED)
    shutil.rmtree(OUT, ignore_errors=True)
    for label in ("negative", "positive"):
        (OUT / label).mkdir(parents=True)
    for i in range(PER_CLASS):
        for label in ("negative", "positive"):
            (OUT / label / f"{i:04d}.txt").write_text(review(rng, label == "positive"), encoding="utf-8")
    print(f"wrote {2 * PER_CLASS} reviews under {OUT}")


if __name__ == "__main__":
    main()
