"""The shipped instructir-lite pack: intact, loads offline, understands held-out phrasing."""

from __future__ import annotations

import numpy as np
import pytest

from instructir_desktop.core.packs import LITE_ID
from instructir_desktop.core.resources import resource_path
from instructir_desktop.core.store import ModelStore

PACK = resource_path("packs", LITE_ID)
pytestmark = pytest.mark.skipif(not (PACK / "manifest.json").is_file(), reason="no bundled pack")


@pytest.fixture(scope="module")
def lite():
    from instructir_desktop.core.restorer import Restorer

    return Restorer(PACK, device="cpu", backend="torch")


def test_bundled_pack_verifies_and_is_the_default():
    store = ModelStore()
    assert store.verify(LITE_ID).ok
    assert store.locate(LITE_ID) == PACK


def test_intent_accuracy_on_held_out_instructions(lite):
    from instructir_desktop.training.evaluate import evaluate_intents
    from instructir_desktop.training.prompts import load_corpus, split

    _, held = split(load_corpus())
    result = evaluate_intents(lite, held)
    assert result["n"] >= 300
    assert result["accuracy"] >= 0.95, result["confusions"]
    # Unrelated requests must not look like a confident restoration request on average.
    assert result["unrelated_mean_confidence"] < 0.6


def test_lite_pack_removes_noise_from_the_sample(lite):
    from instructir_desktop.core.descriptor import psnr
    from instructir_desktop.core.images import load_image

    clean = load_image(resource_path("sample", "sample.jpg")).pixels[200:456, 300:556]
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, 25 / 255, clean.shape), 0, 1)
    restored = lite.restore(noisy.astype(np.float32), "remove the noise please")
    assert psnr(restored, clean) > psnr(noisy, clean) + 3


@pytest.mark.parametrize(
    ("message", "steps"),
    [
        ("it's too dark and grainy", [("lowlight", "it's too dark"), ("denoise", "grainy")]),
        (
            "Remove the noise, then brighten it a bit.",
            [("denoise", "Remove the noise"), ("lowlight", "brighten it a bit")],
        ),
        (
            "the fog ruins it and it is too small as well as noisy",
            [("dehaze", "the fog ruins it"), ("superres", "it is too small"), ("denoise", "noisy")],
        ),
        ("make it sharper & more colourful", [("deblur", "make it sharper"), ("enhance", None)]),
        ("upscale and sharpen", [("superres", "upscale"), ("deblur", "sharpen")]),
        # what the user asks not to be done is set aside, not applied
        ("brighten it, but do not sharpen", [("lowlight", "brighten it")]),
        ("don't make it too bright, just remove the noise", [("denoise", "just remove the noise")]),
        ("keep the colours, just remove the haze", [("dehaze", "just remove the haze")]),
        # nor is how the photo was taken
        ("Shot at night, remove the grain", [("denoise", "remove the grain")]),
        ("it was taken indoors and it's far too dark", [("lowlight", "it's far too dark")]),
        # ... unless it is all there is to fix
        ("shot at night, don't denoise", [("lowlight", "shot at night")]),
        # a request put politely is not something the user did
        (
            "I was hoping you could brighten it and remove the noise",
            [("lowlight", "I was hoping you could brighten it"), ("denoise", "remove the noise")],
        ),
        # nor is a flaw the user says is not there
        ("it's not too dark, just noisy", [("denoise", "just noisy")]),
        ("not blurry, only grainy", [("denoise", "only grainy")]),
        ("it is not overexposed, just blurry", [("deblur", "just blurry")]),
        # "n", "+" and "/" join requests too
        ("dark n noisy", [("lowlight", "dark"), ("denoise", "noisy")]),
        ("sharpen + brighten", [("deblur", "sharpen"), ("lowlight", "brighten")]),
        ("dehaze/upscale", [("dehaze", "dehaze"), ("superres", "upscale")]),
        # a flaw the user likes or accepts is set aside
        ("I love the colours, just remove the haze", [("dehaze", "just remove the haze")]),
        ("we don't mind the grain, but it's too dark", [("lowlight", "it's too dark")]),
        ("I'm ok with the noise, sharpen it please", [("deblur", "sharpen it please")]),
        ("the blur doesn't bother me, it's just too dark", [("lowlight", "it's just too dark")]),
        ("the lighting is great but it's grainy", [("denoise", "it's grainy")]),
        ("the grain isn't an issue, the fog is", [("dehaze", "the fog is")]),
        ("I don't want it sharper, only brighter", [("lowlight", "only brighter")]),
        # so is what the user did to the photo
        ("I cropped it a lot and it's all blocky now", [("superres", "it's all blocky now")]),
        (
            "I used flash and the colours look dull, also it's grainy",
            [("enhance", "the colours look dull"), ("denoise", "it's grainy")],
        ),
        # "fix it" beside a flaw names no second fix
        ("foggy pic, fix pls", [("dehaze", "foggy pic, fix pls")]),
        # one part asks clearly; the whole reads as another task, less surely
        ("the picture is dark and my phone is old", [("lowlight", "the picture is dark")]),
    ],
)
def test_a_message_asking_for_several_fixes_is_split_in_order(lite, message, steps):
    plan = lite.plan(message)
    assert [(i.task, i.text if text else None) for i, (_, text) in zip(plan, steps)] == steps
    assert len(plan) == len(steps)


@pytest.mark.parametrize(
    "message",
    [
        "remove the black and white noise",  # a set phrase, not two requests
        "salt and pepper noise",
        "it is too dark, thanks!",  # the thanks asks for nothing
        "make it brighter and brighter",  # one task twice
        "grainy and noisy",
        "it's soft and out of focus",
        "Hi! Could you please remove the rain from this photo? Thanks a lot.",
    ],
)
def test_a_single_request_stays_one_step(lite, message):
    plan = lite.plan(message)
    assert len(plan) == 1 and plan[0].text == " ".join(message.split())
    assert plan[0] == lite.intent(message)


@pytest.mark.parametrize(
    ("message", "task"),
    [
        ("it was taken through a dirty window", "dehaze"),
        ("shot at night", "lowlight"),
        ("the photo was taken in fog", "dehaze"),
    ],  # fmt: skip
)
def test_how_the_photo_was_taken_alone_is_the_request(lite, message, task):
    """Beside a request it is set aside; alone it describes the flaw, as the model reads it."""
    intent = lite.intent(message)
    assert intent.task == task and not intent.note
    assert lite.plan(message) == [intent]


@pytest.mark.parametrize(
    "message",
    ["I had the iso too high", "shot at iso 6400", "high iso", "the ISO noise is bad",
     "cranked the iso", "the iso was cranked to 25600 and now it looks like sandpaper"],
)  # fmt: skip
def test_a_high_iso_reads_as_the_noise_it_causes(lite, message):
    """The head reads "I had the iso too high" as low light (99 %) and "high iso" as
    upscaling; read with the noise a high ISO causes, the step and its embedding denoise."""
    intent = lite.intent(message)
    assert intent.task == "denoise" and intent.confidence > 0.9 and not intent.note
    assert lite.plan(message) == [intent]
    from instructir_desktop.core.phrasing import reading

    assert lite.encoder.embedding(message).equal(lite.encoder.embedding(reading(message)))


@pytest.mark.parametrize(
    ("message", "steps"),
    [
        ("it's dark, I had to push the iso",
         [("lowlight", "it's dark"), ("denoise", "I had to push the iso")]),
        ("shot at iso 6400, brighten it",
         [("denoise", "shot at iso 6400"), ("lowlight", "brighten it")]),
        # a low ISO causes no noise: how the photo was taken, set aside
        ("shot at iso 100, it's too dark", [("lowlight", "it's too dark")]),
        ("ISO was too low and it's dark, brighten it", [("lowlight", None)]),
    ],
)  # fmt: skip
def test_a_high_iso_beside_another_flaw_is_a_step_of_its_own(lite, message, steps):
    plan = lite.plan(message)
    assert [(i.task, i.text if text else None) for i, (_, text) in zip(plan, steps)] == steps
    assert len(plan) == len(steps)


@pytest.mark.parametrize(
    ("message", "note"),
    [("make it cooler", "white balance"), ("too yellow", "white balance"),
     ("the white balance is too warm", "white balance"), ("remove the snow", "not snow"),
     ("snowflakes", "not snow")],
)  # fmt: skip
def test_white_balance_and_snow_are_held_with_a_note(lite, message, note):
    """Measured, the colour fix warms a photo and the rain removal leaves snowflakes."""
    assert note in lite.intent(message).note
    plan = lite.plan(f"{message} and brighten it")
    assert [(s.task, bool(s.note)) for s in plan][-1] == ("lowlight", False)
    assert note in plan[0].note


@pytest.mark.parametrize(
    "message",
    ["make it warmer", "too blue", "there's a blue cast", "the white balance is too cool",
     "fix the white balance", "remove the colour cast"],
)  # fmt: skip
def test_warming_a_blue_cast_and_white_balance_are_the_colour_fix(lite, message):
    intent = lite.intent(message)
    assert intent.task == "enhance" and not intent.note


@pytest.mark.parametrize(
    "message",
    [
        "the photo is too bright",
        "it's overexposed",
        "the highlights are blown out",
        "way too much exposure",
        "darken it a bit",
        "tone down the brightness",
        "darker please",
        "a touch darker",
        "make the sky darker",
        "turn the exposure down a little",
        "the highlights are too hot",
        "make it not so bright",
    ],
)
def test_asking_to_darken_is_flagged_not_brightened(lite, message):
    """The head reads "too bright" like "too dark" (about 100 % low light here): the
    request carries a note so that no front end brightens an overexposed photo further."""
    from instructir_desktop.core.phrasing import TOO_BRIGHT_NOTE

    intent = lite.intent(message)
    assert intent.note == TOO_BRIGHT_NOTE
    assert intent.to_dict()["note"] == TOO_BRIGHT_NOTE


@pytest.mark.parametrize(
    "message",
    ["make it brighter", "not bright enough", "brighten it but not too bright", "it's too dark",
     "it came out darker than I remember", "make it not so dark", "can you make it not this dark"],
)  # fmt: skip
def test_asking_to_brighten_carries_no_note(lite, message):
    intent = lite.intent(message)
    assert intent.task == "lowlight" and not intent.note
    assert "note" not in intent.to_dict()


def test_a_request_no_fix_does_is_flagged_and_held_in_a_split(lite):
    """The head reads "blur the background" as deblurring (about 100 % here): it carries
    core.scope's note; in a message with a real fix it is a step of its own, with the note."""
    intent = lite.intent("blur the background")
    assert intent.task == "deblur" and intent.note.startswith("InstructIR takes blur away")
    plan = lite.plan("remove the noise and blur the background")
    assert [(s.task, s.text, bool(s.note)) for s in plan] == [
        ("denoise", "remove the noise", False),
        ("deblur", "blur the background", True),
    ]
    # A part the head is unsure of is still held, not dropped into the whole message.
    plan = lite.plan("remove the noise and make it black and white")
    assert [(s.text, bool(s.note)) for s in plan] == [
        ("remove the noise", False),
        ("make it black and white", True),
    ]
    assert not lite.intent("remove the background noise").note


@pytest.mark.parametrize(
    ("message", "task"),
    [("make it not so grainy", "denoise"), ("I want it not blurry", "deblur"),
     ("make the colours look good", "enhance")],
)  # fmt: skip
def test_a_negation_inside_the_request_is_still_a_request(lite, message, task):
    """A request like "make it not blurry" asks for a fix; "it's not blurry" does not."""
    intent = lite.intent(message)
    assert intent.task == task and not intent.note
    assert lite.plan(message) == [intent]


@pytest.mark.parametrize(
    "message",
    ["fix it", "can u fix this pic please", "hi, could you help me with this photo? thanks",
     "it needs some work", "do ur magic ✨", "what can you do with this?"],
)  # fmt: skip
def test_a_request_that_names_no_fix_is_unclear(lite, message):
    """The head reads "fix it" as some fix, often surely (deblur at 97 % for "fix it pls")."""
    from instructir_desktop.core.phrasing import UNSAID_NOTE

    intent = lite.intent(message)
    assert intent.note == UNSAID_NOTE
    assert lite.plan(message) == [intent]


@pytest.mark.parametrize(
    "message",
    ["it's really foggy, please fix it", "noisy photo, do your magic", "fix the blur",
     "help, it's too dark"],
)  # fmt: skip
def test_fix_it_beside_a_flaw_carries_no_note(lite, message):
    assert not lite.intent(message).note


@pytest.mark.parametrize(
    "message", ["I like the grain", "I don't want it any darker", "the colours are perfect"]
)
def test_a_message_that_only_accepts_the_photo_asks_for_nothing(lite, message):
    from instructir_desktop.core.phrasing import NOTHING_ASKED_NOTE

    assert lite.intent(message).note == NOTHING_ASKED_NOTE


def test_an_edit_command_is_held_beside_a_fix(lite):
    """The head reads "undo" as colour enhancement (about 90 %): it carries a note."""
    assert lite.intent("undo").note
    plan = lite.plan("undo that and brighten it instead")
    assert [(s.task, bool(s.note)) for s in plan][-1] == ("lowlight", False)
    assert any(s.note and s.text.startswith("undo") for s in plan)


@pytest.mark.parametrize(
    "message",
    ["perfect", "looks great now", "great job", "that's much better", "I love it", "okay cool",
     "nice, thank you", "hello", "the colours are nice"],
)  # fmt: skip
def test_praise_and_greetings_are_not_read_as_a_fix(lite, message):
    """The head reads "perfect" as upscaling (76 %) and "great job" as denoising (67 %)."""
    from instructir_desktop.core.phrasing import CHATTER_NOTE

    assert lite.intent(message).note == CHATTER_NOTE
    assert [s.note for s in lite.plan(message)] == [CHATTER_NOTE]


@pytest.mark.parametrize(
    ("message", "steps"),
    [
        ("perfect, now remove the noise", [("denoise", "perfect, now remove the noise")]),
        ("the colours are nice, brighten it", [("lowlight", "brighten it")]),
        ("it is too dark, thanks!", [("lowlight", "it is too dark, thanks!")]),
        ("hello, please denoise my image", [("denoise", "hello, please denoise my image")]),
    ],
)
def test_praise_beside_a_request_is_never_a_step(lite, message, steps):
    assert [(s.task, s.text) for s in lite.plan(message)] == steps
