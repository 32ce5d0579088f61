"""Everyday sentences from a small grammar, for the training streams' ordinary speech.

data/sentences.txt holds about a hundred hand-written sentences; said over and over by the
training voices, they teach the model little about the variety of real conversation
(questions, requests, plans, complaints: function words in natural places, natural
sentence prosody). Word salads add words but not that. This module writes as many
sentences as asked from templates with slots ("Who {verb_past} the {food}?"), each slot
filled from a word list below, seeded, so the same seed gives the same sentences.

The templates and words are written for this project (public domain). The evaluation's
sentences (data/eval_sentences.txt) are separate, and streams.py drops any generated
sentence that equals one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_SLOT = re.compile(r"\{(\w+)\}")

WORDS: dict[str, tuple[str, ...]] = {
    "name": (
        "Anna", "Ben", "Carla", "David", "Emma", "Frank", "Grace", "Hugo", "Iris", "James",
        "Karen", "Leo", "Maria", "Nick", "Olivia", "Peter", "Rosa", "Sam", "Tina", "Victor",
        "Wendy", "Yusuf", "Zoe", "Martin", "Priya", "Tom", "Lucy", "Omar", "Julia", "Dan",
        "grandma", "my brother", "your mother", "the neighbour", "the teacher", "the doctor",
    ),
    "subject": (
        "I", "you", "we", "they", "she", "he", "my friend", "our son", "the kids",
        "my partner", "everyone", "nobody", "the landlord", "my boss", "her dad",
    ),
    "food": (
        "bread", "cheese", "milk", "soup", "pasta", "rice", "apples", "oranges", "coffee",
        "tea", "butter", "eggs", "chocolate", "biscuits", "pizza", "salad", "cake",
        "potatoes", "carrots", "lemonade", "yoghurt", "honey", "jam", "noodles", "curry",
        "sandwiches", "grapes", "cereal", "sausages", "beans", "tomatoes", "peanut butter",
    ),
    "thing": (
        "umbrella", "phone", "charger", "laptop", "wallet", "ticket", "jacket", "book",
        "newspaper", "lamp", "kettle", "blanket", "camera", "bag", "scarf", "glasses",
        "calendar", "bottle", "suitcase", "printer", "mirror", "pillow", "ladder", "hammer",
        "bucket", "toaster", "radio", "guitar", "bicycle", "backpack", "notebook", "map",
    ),
    "place": (
        "the kitchen", "the garage", "the office", "the library", "the park", "the beach",
        "the station", "the supermarket", "the bank", "the gym", "the garden", "school",
        "the hospital", "the cinema", "the airport", "the market", "the bakery", "upstairs",
        "the living room", "the car", "the shed", "the attic", "the hallway", "the post office",
    ),
    "time": (
        "today", "tonight", "tomorrow", "this morning", "this afternoon", "last night",
        "on Monday", "on Tuesday", "on Friday", "at the weekend", "next week", "last year",
        "in the evening", "after lunch", "before dinner", "at noon", "at six", "at half past nine",
        "in a minute", "later on", "every day", "once a month", "yesterday", "on Sunday",
    ),
    "verb": (
        "buy", "find", "fix", "clean", "bring", "borrow", "sell", "open", "close", "move",
        "carry", "paint", "check", "cook", "wash", "order", "pack", "return", "lend", "try",
        "change", "visit", "call", "meet", "help", "pay", "read", "build", "cut", "fold",
    ),
    "verb_past": (
        "bought", "found", "fixed", "cleaned", "brought", "borrowed", "sold", "opened",
        "closed", "moved", "carried", "painted", "checked", "cooked", "washed", "ordered",
        "packed", "returned", "lent", "tried", "changed", "finished", "dropped", "broke",
        "forgot", "lost", "ate", "drank", "threw away", "hid", "took", "used up",
    ),
    "verb_ing": (
        "cooking", "reading", "sleeping", "working", "painting", "driving", "shopping",
        "cleaning", "studying", "singing", "running", "swimming", "waiting", "talking",
        "laughing", "gardening", "travelling", "dancing", "knitting", "baking",
    ),
    "adjective": (
        "cold", "warm", "empty", "full", "broken", "new", "old", "heavy", "cheap", "quiet",
        "noisy", "lovely", "strange", "tiny", "huge", "clean", "dirty", "expensive",
        "comfortable", "sticky", "bright", "dark", "wet", "dry", "ready", "late", "early",
    ),
    "colour": (
        "red", "blue", "green", "yellow", "black", "white", "grey", "brown", "purple",
        "orange", "pink", "silver",
    ),
    "feeling": (
        "tired", "hungry", "happy", "bored", "worried", "excited", "busy", "cold", "thirsty",
        "sleepy", "annoyed", "glad", "nervous", "sure", "sorry", "lucky",
    ),
    "number": (
        "two", "three", "four", "five", "six", "seven", "eight", "ten", "twelve", "twenty",
        "a few", "a dozen", "some", "too many", "enough",
    ),
    "animal": (
        "cat", "dog", "rabbit", "hamster", "parrot", "horse", "goldfish", "puppy", "kitten",
        "tortoise", "pigeon", "fox",
    ),
    "activity": (
        "the football", "the news", "the film", "the concert", "the match", "the party",
        "the meeting", "the wedding", "the show", "the lesson", "the game", "the race",
    ),
}

TEMPLATES: tuple[str, ...] = (
    "Who {verb_past} my {thing}?",
    "Where did you put the {thing}?",
    "Have you seen my {colour} {thing} anywhere?",
    "Can you {verb} the {thing} {time}?",
    "Could you {verb} some {food} on the way home?",
    "Did {name} {verb} the {thing} {time}?",
    "{name} {verb_past} the {thing} {time}.",
    "{subject} left the {thing} in {place}.",
    "I think the {thing} is in {place}.",
    "We need more {food} for {time}.",
    "There's no {food} left in the fridge.",
    "The {food} is too {adjective}.",
    "This {thing} is really {adjective}.",
    "I'm so {feeling} {time}.",
    "Are you {feeling}?",
    "Why is the {thing} so {adjective}?",
    "What time does {activity} start?",
    "Shall we go to {place} {time}?",
    "Let's {verb} the {thing} {time}.",
    "Don't forget to {verb} the {thing}.",
    "Please {verb} the {thing} before {name} gets back.",
    "{name} is {verb_ing} in {place}.",
    "{subject} spent all afternoon {verb_ing}.",
    "How much did the {thing} cost?",
    "It was {adjective} at {place} {time}.",
    "The {animal} is asleep on the {thing}.",
    "Has anyone fed the {animal}?",
    "We bought {number} bags of {food}.",
    "I need {number} minutes to get ready.",
    "{name} and {name} are coming {time}.",
    "Is it {adjective} outside?",
    "Do you want {food} or {food}?",
    "I'd rather have {food}, thanks.",
    "Wait, I can't hear you, the radio is on.",
    "Turn it down a bit, would you?",
    "When are you back from {place}?",
    "I'll be at {place} until {time}.",
    "The {thing} stopped working {time}.",
    "Somebody {verb_past} the {colour} {thing} again.",
    "What did {name} say about {activity}?",
    "Honestly, {activity} was {adjective}.",
    "Why don't we {verb} it {time}?",
    "How was {activity} {time}?",
    "Which {thing} do you mean, the {colour} one?",
    "I haven't {verb_past} anything yet.",
    "Maybe {name} {verb_past} it by mistake.",
    "You look {feeling}, is everything all right?",
    "Is there any {food} in {place}?",
    "Hang on, the {animal} wants to go out.",
    "Whose {thing} is this?",
    "We could walk to {place} if it's not {adjective}.",
    "How often do you {verb} the {thing}?",
    "{subject} never {verb_past} the {thing}.",
    "Tell {name} the {food} is ready.",
    "Guess who I saw at {place} {time}.",
    "Everything at {place} was {adjective}.",
    "I'm {verb_ing}, can it wait?",
    "Who wants {food}?",
    "Hold on, let me {verb} the {thing} first.",
)

SLOTS = frozenset(WORDS)


def template_slots(template: str) -> list[str]:
    return _SLOT.findall(template)


def sentences(count: int, rng: np.random.Generator, exclude: Sequence[str] = ()) -> list[str]:
    """`count` sentences, each a template filled at random (duplicates possible), none in
    `exclude` (compared case-insensitively)."""
    if count < 0:
        raise ValueError(f"sentence count {count}: must be >= 0")
    banned = {s.strip().lower() for s in exclude}
    out: list[str] = []
    while len(out) < count:
        template = TEMPLATES[int(rng.integers(len(TEMPLATES)))]

        def fill(m: re.Match[str]) -> str:
            words = WORDS[m.group(1)]
            return words[int(rng.integers(len(words)))]

        text = _SLOT.sub(fill, template)
        text = text[0].upper() + text[1:]
        if text.lower() not in banned:
            out.append(text)
    return out
