"""The dialogue's prompts and reply schemas — data, kept apart from the procedure in
`dialogue.py` so that they can be read, diffed and tested on their own."""

BROAD_FALLBACK = ["animal", "vehicle", "plant", "person", "building", "object"]


SYSTEM = (
    "You are identifying the main object in a photo that you cannot see. A vision model is your "
    "eyes: you propose candidate labels, and it tells you how well each one matches the photo, as "
    "probabilities over just those candidates (they sum to 100%). {task}"
)
TASK_KNOWN = (
    "The photo shows one of these: {labels}. After the questions you will answer with one of them."
)
TASK_OPEN = "After the questions you will name the object with one short label."
FIRST = {
    "seed": 'Round 1 of {rounds}. Propose 2 to 8 candidate labels to ask about, as JSON: {{"candidates": [...]}}.',
    "adaptive": (
        "Round 1 of {rounds}. Start broad, with general categories (such as animal, vehicle, plant, "
        "building, food, person). Propose 2 to 8 candidate labels to ask about, and your current "
        'best guess, as JSON: {{"candidates": [...], "guess": "..."}}.'
    ),
}
NEXT = {
    "seed": "The vision model answered:\n{scores}\nRound {r} of {rounds}. Propose the next candidates as JSON.",
    "adaptive": (
        "The vision model answered:\n{scores}\n{advice}Round {r} of {rounds}. Propose the next "
        "candidates and your current best guess as JSON."
    ),
}
BACKOFF = (
    "These scores are nearly flat: the vision model cannot tell these candidates apart. Step back "
    "and ask about broader, more abstract categories before getting specific again.\n"
)
# The 1.5B model ignored a bare "narrow down" and asked the same eight words again; naming the
# leader gets it to list kinds of it (coarse to fine: vehicle → ship, truck, … → tanker, …).
NARROW = (
    "The leading candidate is {top}. Narrow down: propose more specific kinds of {top}, or "
    "things that look like one.\n"
)
REPEAT = (
    "You asked about all of these before. Propose labels you have not asked about yet, as JSON."
)
# Known labels. `seed` names the labels in the question, as the post did; the 1.5B model then
# answers the first-listed label far too often (on the dev images: "airplane" for a dog the eyes
# put at 87 %), so `adaptive` leaves the list in the system prompt and shows the eyes' scores
# over the possible answers instead.
CHECK = "Finally, the vision model's scores over the possible answers:\n{scores}\n"
# Open labels, adaptive: the eyes score every label the LLM asked about together, and the answer
# is one of their top ones (the 1.5B model otherwise answers a word from its first question,
# "tree" for most photos, whatever the scores said).
CHECK_OPEN = "Finally, the vision model's scores over all the labels you asked about:\n{scores}\n"
FINAL_KNOWN = {
    "seed": "The vision model answered:\n{scores}\n{check}Now answer: which one of {labels} is the photo? Reply with the label only.",
    "adaptive": "The vision model answered:\n{scores}\n{check}Weigh everything it answered. Which of the possible answers is the photo? Answer with the label only.",
}
FINAL_OPEN = {
    "seed": "The vision model answered:\n{scores}\nNow name the object in the photo with one short label.",
    "adaptive": "The vision model answered:\n{scores}\n{check}Weigh everything it answered. What is the object in the photo? Answer with the most specific of these labels that fits, the label only.",
}
PROBE_KNOWN = {
    "seed": "The vision model answered:\n{scores}\nIf you had to answer now: which one of {labels} is the photo? Reply with the label only.",
    "adaptive": "The vision model answered:\n{scores}\n{check}If you had to answer now: which of the possible answers is the photo? Answer with the label only.",
}
PROBE_OPEN = {
    "seed": "The vision model answered:\n{scores}\nIf you had to answer now, what is the object? One short label.",
    "adaptive": "The vision model answered:\n{scores}\n{check}If you had to answer now, what is the object? Answer with the most specific of these labels that fits, the label only.",
}

_LABEL = {"type": "string", "minLength": 1, "maxLength": 40}
ROUND_SCHEMA = {
    "seed": {
        "type": "object",
        "properties": {
            "candidates": {"type": "array", "items": _LABEL, "minItems": 2, "maxItems": 8}
        },
        "required": ["candidates"],
    },
    "adaptive": {
        "type": "object",
        "properties": {
            "candidates": {"type": "array", "items": _LABEL, "minItems": 2, "maxItems": 8},
            "guess": _LABEL,
        },
        "required": ["candidates", "guess"],
    },
}
OPEN_ANSWER_SCHEMA = {"type": "object", "properties": {"label": _LABEL}, "required": ["label"]}
