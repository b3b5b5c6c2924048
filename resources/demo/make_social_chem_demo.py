"""Write ``social-chem-101.demo.tsv``, a small synthetic file in the Social-Chem-101 format.

The rows are written by this project, not taken from Social-Chemistry-101. They use the 25
tab-separated columns of ``social-chem-101.v1.0.tsv`` so that the whole ground-truth stage
can run without the real data. The built moral vectors cover every foundation and every
typicality level on both poles of each. They also contain at least 12 prototypes per slot, at
least 40 neutral rows, rows with two foundations, and rows that the filters drop.

Run from the repository root: ``python resources/demo/make_social_chem_demo.py``. The output
is the same on every run (fixed seed).
"""

from __future__ import annotations

import csv
import random
from pathlib import Path

SEED = 20201116
OUT_PATH = Path(__file__).with_name("social-chem-101.demo.tsv")

COLUMNS = (
    "area", "m", "split", "rot-agree", "rot-categorization", "rot-moral-foundations",
    "rot-char-targeting", "rot-bad", "rot-judgment", "action", "action-agency",
    "action-moral-judgment", "action-agree", "action-legal", "action-pressure",
    "action-char-involved", "action-hypothetical", "situation", "situation-short-id", "rot",
    "rot-id", "rot-worker-id", "breakdown-worker-id", "n-characters", "characters",
)

# Actions per (foundation, pole). Each list contains 12 phrases.
ACTIONS: dict[tuple[str, str], list[str]] = {
    ("care-harm", "virtue"): [
        "comforting a grieving friend", "visiting your grandmother in the hospital",
        "helping a lost child find their parents", "donating blood regularly",
        "checking on an elderly neighbour during a heat wave", "feeding a stray cat",
        "listening to a friend who is having a hard time", "driving a sick coworker home",
        "babysitting for a tired single parent", "bringing soup to a sick roommate",
        "holding the door for someone on crutches", "calming down a scared toddler",
    ],
    ("care-harm", "vice"): [
        "mocking a disabled person", "hitting your partner", "kicking a dog",
        "leaving a toddler alone in a hot car", "bullying a younger sibling",
        "laughing at someone who just fell", "ignoring a friend who asks for help",
        "spreading a cruel rumour about a classmate", "yelling at a crying child",
        "shoving a stranger in a queue", "teasing someone about their weight",
        "refusing to call an ambulance for an injured person",
    ],
    ("fairness-cheating", "virtue"): [
        "splitting the bill evenly with friends", "giving credit to a coworker for their idea",
        "returning extra change to a cashier", "taking turns on the office microwave",
        "grading every student by the same rubric", "paying back a loan on time",
        "sharing the prize money with your teammates", "waiting your turn in line",
        "hiring the most qualified applicant", "admitting that you broke the rules of the game",
        "dividing the chores equally with your roommates", "reporting your real income on taxes",
    ],
    ("fairness-cheating", "vice"): [
        "cheating on an exam", "taking credit for a colleague's work",
        "cutting in line at the grocery store", "rigging a raffle for your friend",
        "copying a classmate's homework", "lying on your resume",
        "keeping money that a cashier gave you by mistake", "skipping out on your share of rent",
        "using a fake doctor's note to skip work", "stealing a coworker's tips",
        "padding an expense report", "changing the score when nobody is looking",
    ],
    ("loyalty-betrayal", "virtue"): [
        "standing up for your best friend", "keeping a friend's secret",
        "supporting your sister at her wedding", "sticking with your team after a loss",
        "defending your family when others mock them", "attending your friend's art show",
        "helping your brother move house", "staying by your partner during an illness",
        "cheering for your hometown team", "showing up when a friend needs you",
        "keeping in touch with old friends", "backing up a teammate in a meeting",
    ],
    ("loyalty-betrayal", "vice"): [
        "cheating on your spouse", "telling a friend's secret to everyone",
        "ditching your friends for a new crowd", "selling out your teammates to the boss",
        "dating your best friend's ex behind their back", "skipping your brother's wedding",
        "badmouthing your family to strangers", "abandoning a friend at a party",
        "leaking your company's plans to a rival", "ghosting a friend who needs support",
        "flirting with your partner's sibling", "breaking a promise to a close friend",
    ],
    ("authority-subversion", "virtue"): [
        "following your boss's instructions", "obeying the lifeguard at the pool",
        "respecting your parents' house rules", "listening to your teacher in class",
        "following the safety rules at work", "standing for the national anthem",
        "asking permission before borrowing the car", "doing what the referee says",
        "showing up on time to your shift", "addressing elders politely",
        "following the doctor's orders", "waiting for the crossing signal",
    ],
    ("authority-subversion", "vice"): [
        "disobeying your parents", "talking back to your teacher",
        "ignoring a police officer's instructions", "skipping school without permission",
        "undermining your manager in front of clients", "breaking curfew on purpose",
        "sneaking out of the house at night", "refusing to follow the team captain",
        "ignoring the rules at a public pool", "mocking your boss in a company email",
        "defying a court order", "forging your parent's signature",
    ],
    ("sanctity-degradation", "virtue"): [
        "keeping your body healthy", "treating a place of worship with respect",
        "washing your hands before cooking", "staying sober at a family event",
        "dressing modestly at a funeral", "taking care of a family grave",
        "keeping your home clean", "saying grace before a meal",
        "respecting the dead at a memorial", "saving yourself for marriage",
        "keeping your language clean around children", "taking a shower after the gym",
    ],
    ("sanctity-degradation", "vice"): [
        "spitting in someone's food", "urinating in public",
        "vandalising a grave", "eating food off the floor of a bus",
        "getting drunk at a funeral", "cheating on a diet with a whole cake",
        "not showering for weeks", "licking a public handrail",
        "desecrating a holy book", "leaving dirty dishes to rot",
        "sharing explicit photos of someone", "using drugs in front of children",
    ],
}

NEUTRAL_ACTIONS = [
    "folding laundry on a Sunday", "watching a movie alone", "buying a new phone",
    "taking the bus to work", "going to bed early", "changing your hairstyle",
    "drinking coffee in the morning", "moving to a new city", "choosing a different college",
    "ordering pizza for dinner", "painting your bedroom blue", "wearing sneakers to class",
    "reading the news online", "switching to a new gym", "planting tomatoes in the garden",
    "skipping breakfast", "learning to play the guitar", "repainting an old bicycle",
    "taking a long walk after dinner", "rearranging your furniture",
]

AREAS = ("amitheasshole", "rocstories", "confessions", "dearabby")
SPLITS = ("train", "train", "train", "train", "train", "train", "train", "train", "dev", "test")
CHARACTERS = (
    "narrator|my friend", "narrator|my sister", "narrator|my boss|a coworker",
    "narrator|my roommate", "narrator|a stranger", "narrator|my parents",
)
SITUATION_TEMPLATES = (
    "AITA for {action}?", "I keep thinking about {action} last weekend",
    "my roommate has been {action}", "WIBTA if I told my family about {action}",
    "Tom was {action} when his mother came home.", "I feel weird about {action}",
)
JUDGMENT_WORDS = {
    -2: ("it's terrible", "terrible"),
    -1: ("it's wrong", "wrong"),
    0: ("it's okay", "okay"),
    1: ("it's good", "good"),
    2: ("it's admirable", "admirable"),
}
FOUNDATION_NAMES = tuple(foundation for foundation, pole in ACTIONS if pole == "virtue")

# (judgment magnitude, agreement) pairs that give each non-prototype typicality level;
# 0.25 and 0.5 each have two pairs, and the generator alternates between them.
LEVEL_PAIRS = {
    0.125: [(1, 1)],
    0.25: [(1, 2), (2, 1)],
    0.375: [(1, 3)],
    0.5: [(1, 4), (2, 2)],
    0.75: [(2, 3)],
}
PROTOTYPES_PER_SLOT = 14
ROWS_PER_LEVEL = 5
NEUTRAL_ROWS_PER_FOUNDATION = 12
DROPPED_ROWS = 40


def make_row(
    rng: random.Random,
    action: str,
    foundations: str,
    judgment: int | str,
    agree: int | str,
    rot_bad: str = "0",
    m: str = "1",
) -> dict[str, str]:
    """Return one raw row with plausible values in the columns the build does not read."""
    area = rng.choice(AREAS)
    short_id = f"{rng.getrandbits(32):08x}"
    rot_worker = f"w{rng.randrange(1000):03d}"
    word = JUDGMENT_WORDS[int(judgment)] if judgment != "" else ("", "questionable")
    first_word = action.split(" ", 1)[0].capitalize()
    rest = action.split(" ", 1)[1] if " " in action else ""
    return {
        "area": area,
        "m": m,
        "split": rng.choice(SPLITS),
        "rot-agree": str(rng.randint(2, 4)),
        "rot-categorization": rng.choice(("morality-ethics", "social-norms", "morality-ethics|social-norms")),
        "rot-moral-foundations": foundations,
        "rot-char-targeting": rng.choice(("char-0", "char-1", "char-none")),
        "rot-bad": rot_bad,
        "rot-judgment": word[0],
        "action": action,
        "action-agency": "agency",
        "action-moral-judgment": str(judgment),
        "action-agree": str(agree),
        "action-legal": "legal" if judgment == "" or int(judgment) >= -1 else rng.choice(("legal", "tolerated", "illegal")),
        "action-pressure": str(max(-2, min(2, int(judgment) if judgment != "" else 0))),
        "action-char-involved": rng.choice(("char-0", "char-1")),
        "action-hypothetical": rng.choice(("explicit", "probable", "hypothetical")),
        "situation": rng.choice(SITUATION_TEMPLATES).format(action=action),
        "situation-short-id": f"{area}/{short_id}",
        "rot": f"{first_word} {rest} is {word[1]}.".replace("  ", " "),
        "rot-id": f"rot/{area}/{short_id}/{rot_worker}/{rng.randint(1, 5)}",
        "rot-worker-id": rot_worker,
        "breakdown-worker-id": f"w{rng.randrange(1000):03d}",
        "n-characters": "2",
        "characters": rng.choice(CHARACTERS),
    }


def foundations_for(rng: random.Random, foundation: str, index: int) -> str:
    """Return the foundation list of a row; every fifth row also lists a second foundation."""
    if index % 5 != 4:
        return foundation
    other = rng.choice([name for name in FOUNDATION_NAMES if name != foundation])
    return f"{foundation}|{other}"


def build_rows(rng: random.Random) -> list[dict[str, str]]:
    """Return all demo rows in a seeded random order."""
    rows: list[dict[str, str]] = []
    for (foundation, pole), actions in ACTIONS.items():
        sign = 1 if pole == "virtue" else -1
        index = 0
        for k in range(PROTOTYPES_PER_SLOT):
            action = actions[k % len(actions)]
            rows.append(make_row(rng, action, foundations_for(rng, foundation, index), 2 * sign, 4))
            index += 1
        for level, pairs in LEVEL_PAIRS.items():
            for k in range(ROWS_PER_LEVEL):
                magnitude, agree = pairs[k % len(pairs)]
                action = rng.choice(actions)
                rows.append(
                    make_row(rng, action, foundations_for(rng, foundation, index), magnitude * sign, agree)
                )
                index += 1

    for foundation in FOUNDATION_NAMES:
        for k in range(NEUTRAL_ROWS_PER_FOUNDATION):
            action = rng.choice(NEUTRAL_ACTIONS)
            if k % 3 == 2:
                judgment, agree = rng.choice((-1, 1, 2)), 0  # agreement 0 also gives a neutral vector
            else:
                judgment, agree = 0, rng.randint(1, 4)
            rows.append(make_row(rng, action, foundations_for(rng, foundation, k), judgment, agree))

    all_actions = [action for actions in ACTIONS.values() for action in actions]
    for k in range(DROPPED_ROWS):
        foundation = rng.choice(FOUNDATION_NAMES)
        action = rng.choice(all_actions)
        kind = k % 6
        if kind == 0:
            row = make_row(rng, action, foundation, 1, 3, rot_bad="1")
        elif kind == 1:
            row = make_row(rng, action, foundation, -1, 3, m=rng.choice(("3", "5", "50")))
        elif kind == 2:
            row = make_row(rng, action, "", -2, 4)  # no moral foundation listed
        elif kind == 3:
            row = make_row(rng, action, foundation, 2, 4)
            row["action"] = ""  # the worker wrote no action
        elif kind == 4:
            row = make_row(rng, action, foundation, "", "")  # judgment and agreement unanswered
        else:
            row = make_row(rng, action, foundation, -1, "")  # agreement unanswered
        rows.append(row)

    rng.shuffle(rows)
    return rows


def main() -> None:
    """Write the demo TSV next to this script."""
    rng = random.Random(SEED)
    rows = build_rows(rng)
    with OUT_PATH.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=COLUMNS, delimiter="\t", quoting=csv.QUOTE_NONE, lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
