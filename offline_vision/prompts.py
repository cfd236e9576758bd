"""Every prompt the product sends, as data: read, diff and test them here, not in the code
that sends them. Sections: templates, the dialogue, pixel prompting, label knowledge, and the
reasoners' own repair and format instructions."""

# --- templates ----------------------------------------------------------------------------------

BASE_TEMPLATE = "a photo of a {}"  # the ConSE stand-in's one template
SINGLE_TEMPLATE = (
    BASE_TEMPLATE + "."
)  # CLIP's single template (named ensembles: data/templates.json)

# --- the dialogue (dialogue.py) ------------------------------------------------------------------

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

# --- pixel prompting (pixels.py) ---------------------------------------------------------------

SHADES = " .:-=+*#%@"  # ascii encoding: 10 levels, dark → bright
POST_PROMPT = {
    # The post's prompt, as summarised in SEEDS.md (translated to English).
    "en": (
        "This is a virtual world. You can: read an image that was converted to grayscale and to "
        "an array; decode it back into an image representation; recognise what is in it and say "
        "so in a sentence.\n"
        "Your function: when given such an array, apply your abilities step by step and say in a "
        "sentence what is drawn.\n"
        "Reference:\n"
        "img = Image.fromarray(img).resize((20, 20)).convert('L')\n"
        "img_array = np.round(np.asarray(img, dtype=np.float32) / 255.0, decimals=1)\n"
        "Input/Output:\n"
        "img_array: {{the array}}\n"
        "What is written: {{apply your abilities step by step, reason logically, answer in a "
        "sentence}}\n\n"
        "img_array: {grid}\n"
        "What is written:"
    ),
    # The same prompt rendered back into Japanese, the post's language. The post's verbatim
    # Japanese text is not available offline; this follows the summary sentence by sentence.
    "ja": (
        "ここは仮想世界です。あなたは次のことができます: グレースケールに変換され配列になった画像を"
        "読み取ること。それを画像表現に復号すること。そこに何が描かれているかを認識し、文章で答えること。\n"
        "あなたの機能: そのような配列が与えられたら、能力を段階的に使い、何が描かれているかを文章で答えてください。\n"
        "参考:\n"
        "img = Image.fromarray(img).resize((20, 20)).convert('L')\n"
        "img_array = np.round(np.asarray(img, dtype=np.float32) / 255.0, decimals=1)\n"
        "入力/出力:\n"
        "img_array: {{配列}}\n"
        "何が書かれているか: {{能力を段階的に使い、論理的に考え、文章で答える}}\n\n"
        "img_array: {grid}\n"
        "何が書かれているか:"
    ),
}
PIXELS_SYSTEM = (
    "You read handwritten digits. Each digit is given as a 20x20 grid of pixel intensities, one "
    "row per line: {legend}. Answer with the single digit 0-9 that is drawn."
)
PIXELS_LEGEND = {
    "seed": "values 0.0 (background) to 1.0 (ink)",
    "digits": "each character 0 (background) to 9 (ink)",
    "ascii": f"characters from {SHADES!r}, space is background, '@' is the strongest ink",
}
PIXELS_QUESTION = "{grid}\nWhich digit is this?"
FEEDBACK_SYSTEM = PIXELS_SYSTEM + " After each answer you are told the true digit; learn from it."
FEEDBACK_RIGHT = "Correct, it was {truth}."
FEEDBACK_WRONG = "Wrong: it was {truth}."
FEEDBACK_NEXT = "{feedback}\n\nNext digit:\n{question}"

# --- label knowledge (knowledge.py) -------------------------------------------------------------

# Prompts are data. Chosen on the 632 CIFAR-10 dev images (never the 300): plain lines parse
# more reliably from small local models than a JSON grammar, which they fill with run-on prose.
KNOWLEDGE_SYSTEM = (
    "You write short, concrete texts that help an image classifier. Answer with one item per "
    "line and nothing else: no numbering, no headings, no explanations."
)
KNOWLEDGE_PROMPTS = {
    "descriptions": (
        "The classes are: {labels}.\nWrite {n} short visual descriptions of a photo of a "
        "{label}: its shape, parts, colours, texture and usual surroundings, at most 10 words "
        "each, one per line.\nFor example, for a bus:\nlong box-shaped body with many windows\n"
        "large black wheels\nparked at a stop on a city street"
    ),
    "subclasses": (
        "The classes are: {labels}.\nList {n} common kinds of {label} (breeds, species, makes "
        "or types), each by its usual name of 1 to 3 words, one per line. Do not list any of "
        "the other classes.\nFor example, for a bus:\nschool bus\ndouble-decker bus\ntrolleybus"
    ),
    "differential": (
        "In small photos a {label} is easily mistaken for {others}. Write {n} visual features "
        "of a {label} that {others} lack, a few words each, one per line.\nFor example, for a "
        "bus mistaken for a truck:\nrows of passenger windows along the side\ndoors in the middle"
    ),
}

# --- the reasoners' repair turn and format instructions (models/reasoners/) ---------------------

REPAIR_CHOICES = "That answer is not allowed. Reply with exactly one of: {choices}. Nothing else."
REPAIR_SCHEMA = (
    "That reply is not valid ({error}). Reply with only a JSON value that matches this schema, "
    "no prose and no code fences:\n{schema}"
)
REPAIR_EMPTY = "Your reply was empty. Please answer."
CHOICE_INSTRUCTION = 'Answer with JSON {{"answer": <one of {choices}>}} and nothing else.'
SCHEMA_INSTRUCTION = "Answer with only JSON matching this schema, no prose:\n{schema}"
CHOICE_ONLY = "Answer with exactly one of: {choices}. Nothing else."  # for a first-token logprob

# --- the bridge: label names the eyes cannot read (bridge.py) ----------------------------------

# The examples name no CIFAR-10 class and no word of the dev label sets (they are what the
# prompt is chosen on): one translation, one scientific name, one non-Latin script, one
# already-plain name.
BRIDGE_SYSTEM = (
    "You name the classes of an image classifier in everyday English. Its vision model reads "
    "only everyday English words, as in a photo caption."
)
# The set's domain follows the classes (" They are animals."): on the four dev sets without
# dictionaries (the 1.5B, 632 dev images) it lifted cifar10-jargon's recovery from 0.65 to 0.90
# (pooch: dog, not "animal"; cervid: deer, not "cow"), left Japanese and French as they were and
# cost Latin 0.03 (Autocinetum: car, not automobile); mean 0.90 → 0.95.
BRIDGE_DOMAIN_LINE = " They are {domain}."
# Two ways of asking, each chosen on the four dev label sets (names checked by hand, accuracy on
# the 632 dev images, the 1.5B GGUF), each wrong somewhere the other is right: asked for the
# name alone it wrote "cow" for cervid and "dog" for moggy; asked what each class is first, "fish"
# for grenouille and "snake" for Anura. Where the two disagree, BRIDGE_CHOOSE lets the reasoner's
# own token probabilities pick between its two answers.
# The examples name no CIFAR-10 class and no word of the dev label sets: one translation, one
# scientific name, one non-Latin script, one already-plain name. A name copied from them for
# another label is no answer (bridge.py drops it).
BRIDGE_EXAMPLES = {
    "Schmetterling": ("an insect with large colourful wings", "butterfly"),
    "Quercus": ("a tree genus", "oak tree"),
    "椅子": ("a seat", "chair"),
    "mug": ("a cup with a handle", "mug"),
}
_ASK = (
    "The classifier's classes are: {{labels}}.{{domain}}\nFor each class below, {what}give the plain "
    "everyday English word a photo caption would use for it, 1 to 3 words: never a scientific, "
    "foreign, slang or trade word. Each class is a different thing and gets a different word.\n"
    "For example: {examples}.\nClasses: {{chunk}}\nAnswer as JSON: each class → {answer}."
)
BRIDGE_PROMPTS = {
    "direct": _ASK.format(
        what="",
        examples=", ".join(f"{k} → {w}" for k, (_m, w) in BRIDGE_EXAMPLES.items()),
        answer="its plain English word",
    ),
    "meaning": _ASK.format(
        what="say in a few words what it is, then ",
        examples="; ".join(f"{k} → {m} → {w}" for k, (m, w) in BRIDGE_EXAMPLES.items()),
        answer="what it is and its plain English word",
    ),
}
# The pick between a label's candidates (two answers, or an unordered dictionary's senses) is told
# the set's domain too, as every other request is.
BRIDGE_CHOOSE = (
    "The classifier's classes are: {labels}.{domain}\nIn plain everyday English, the class "
    "'{label}' is called:"
)
BRIDGE_CONFLICT = (
    "{problems}{taken}Each class is a different thing: give each of these classes a different "
    "plain English word that tells it apart from the others.\nClasses: {chunk}\nAnswer as JSON: "
    "each class → its plain English word."
)
BRIDGE_CLASH = "Different classes got the same word: {clashes}. "
BRIDGE_UNREAD = "These are not plain English words a photo caption would use: {words}. "
BRIDGE_TAKEN = "The other classes are already called: {names}. "
# The tie-break where asking again did not separate them: which class the name belongs to.
BRIDGE_OWNER = "Which of these classes is best called '{name}' in everyday English?"

# The label set's domain, where the user gave none (`--domain`): one request per set. A
# dictionary's senses are then weighed by it (names.py). The examples name no dev set's domain.
BRIDGE_DOMAIN = (
    "The classes of an image classifier are: {labels}.\nWhat kind of things are they, in 1 to 5 "
    "plain English words (for example: birds; kitchen tools; car parts)? Answer as JSON: "
    '{{"domain": ...}}'
)

# Names chosen by examples (labels.naming): several candidates per class, for the eyes to test on
# the user's example images; the names the bridge gave are offered as a start, not an answer.
BRIDGE_CANDIDATES = (
    "The classifier's classes are: {labels}.\n"
    "For each class below, give {n} different plain everyday English words or short phrases a "
    "photo caption might use for it, the likeliest first: what the class is, a more general "
    "word, a more specific one. Never a scientific, foreign, slang or trade word.\n"
    "Classes: {chunk}\n"
    "Answer as JSON: each class → a list of {n} English words."
)
