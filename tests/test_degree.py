"""How much of a fix a request asks for (core.degree): the gentle wordings real users type, and
the words that only say how bad the flaw is."""

from __future__ import annotations

import pytest

from instructir_desktop.core.degree import gentle

GENTLE = [
    "brighten it a little", "slightly brighter", "a bit sharper please", "reduce the noise a bit",
    "a light denoise", "gentle sharpening", "just a touch brighter", "make it a little less noisy",
    "slightly reduce the grain", "brighten the shadows slightly", "a touch of brightness",
    "lighten it up a tad", "can you clean it up a little", "a little more contrast",
    "subtle brightening please", "remove some of the haze, just a bit", "denoise lightly",
    "could it be a tiny bit brighter", "brighten a little bit", "remove a little of the noise",
    "increase the brightness slightly", "Brighten a bit, it's very dark", "only a little sharper",
    "remove just some of the noise", "a bit darker please", "darken it a little",
]  # fmt: skip
WHOLE = [
    "it's a bit dark", "slightly blurry", "a little noisy", "a bit too dark",
    "the photo is slightly out of focus", "it is a bit underexposed", "remove the noise",
    "brighten it", "make it much brighter", "a lot brighter", "it's a little hazy, remove it",
    "too dark", "a bit over exposed", "the sky is a little washed out", "it looks a bit flat",
    "remove the noise, it is a bit much", "less noise", "more detail",
    "I shot it at night so it's slightly grainy", "brighten it, it's a little dark",
    "it's blurry, a little out of focus", "there is a bit of noise",
    "the image is a bit soft, sharpen it", "remove the noise completely", "it's a tad dark",
    "a little bit of haze in the background", "Too dark. Brighten it.", "It's slightly foggy",
]  # fmt: skip


@pytest.mark.parametrize("text", GENTLE)
def test_a_request_for_part_of_a_fix_is_gentle(text):
    assert gentle(text)


@pytest.mark.parametrize("text", WHOLE)
def test_a_small_flaw_or_a_plain_request_asks_for_the_whole_fix(text):
    assert gentle(text) == ""


def test_the_words_found_are_what_the_chat_quotes():
    assert gentle("please reduce the noise a bit, thanks") == "reduce the noise a bit"
    assert gentle("make it slightly brighter") == "slightly brighter"
