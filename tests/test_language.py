"""Text that is not English words (German, French, keyboard mashes) is unclear: the head of
either pack would read it as some fix with high confidence. English phrasing is not hurt:
no held-out prompt of the seven tasks is flagged."""

from __future__ import annotations

import pytest

from instructir_desktop.core.language import NOT_ENGLISH_NOTE, reads_as_english

FOREIGN = {
    "de": [
        "mach es heller bitte, das Foto ist zu dunkel",
        "das Bild ist unscharf",
        "entferne das Rauschen",
        "bitte schärfer machen",
        "zu dunkel",
        "das Foto ist verrauscht, bitte entrauschen",
        "kannst du den Nebel entfernen?",
        "mach das Bild heller",
        "es regnet auf dem Foto, entferne die Tropfen",
        "Das Bild ist viel zu verschwommen",
    ],
    "fr": [
        "rends la photo plus claire s'il te plaît, elle est trop sombre",
        "la photo est floue",
        "enlève le bruit",
        "trop sombre",
        "c'est trop flou, peux-tu corriger ?",
        "supprime la pluie de l'image",
        "il y a du brouillard sur la photo",
        "éclaircis cette photo",
        "l'image est pleine de grain",
        "améliore les couleurs s'il vous plaît",
    ],
    "es": [
        "la foto está muy oscura, hazla más clara",
        "quita el ruido de la imagen",
        "está borrosa",
        "demasiado oscura",
        "elimina la lluvia por favor",
        "hay mucha niebla en la foto",
        "aclara la imagen",
        "la imagen tiene mucho ruido",
        "mejora los colores",
        "la foto salió movida",
    ],
    "it": [
        "la foto è troppo scura, rendila più luminosa",
        "togli il rumore",
        "l'immagine è sfocata",
        "troppo scura",
        "rimuovi la pioggia per favore",
        "c'è nebbia nella foto",
        "schiarisci la foto",
        "migliora i colori di questa immagine",
        "la foto è mossa",
        "rendi l'immagine più nitida",
    ],
    "nl": [
        "maak de foto lichter alsjeblieft, hij is te donker",
        "de foto is wazig",
        "verwijder de ruis",
        "te donker",
        "er zit veel mist op de foto",
        "haal de regen weg",
        "maak het beeld scherper",
        "de kleuren zijn flets, verbeter ze",
        "het is een korrelige foto",
        "kun je deze foto verbeteren",
    ],
    "pt": [
        "a foto está muito escura, deixe mais clara por favor",
        "remova o ruído",
        "a imagem está desfocada",
        "muito escura",
        "tire a chuva da foto",
        "tem muita neblina na foto",
        "clareie a imagem",
        "melhore as cores desta foto",
        "a foto ficou tremida",
        "deixe a imagem mais nítida",
    ],
}
MASHES = [
    "asdkjh qwe zxc",
    "asdf",
    "qwerty uiop",
    "jkljkl",
    "sdfsdf fgh",
    "xcvb nmnm",
    "lkjhg",
    "zzzzzz",
    "hjkl asdf qwer",
    "fjdksla",
    "aaaaaaa",
    "mnbvcxz",
    "ghfjdk slaie",
    "bnm bnm bnm",
]
ENGLISH = [
    "it's too dark",
    "remove the noise",
    "the fog ruins it",
    "pls fix the blur",
    "to much noise",  # typos and shorthand stay English
    "remvoe the nosie",
    "make it pop",
    "dehaze",
    "sharpen the photo from my iPhone",
    "the photo is sombre, brighten it",
    "it's a bit grainy, la la land vibes",
    "ISO 3200 noise",
    "photo plus sharp please",
    "net result is too dark",
]


@pytest.mark.parametrize(
    "text", [t for texts in FOREIGN.values() for t in texts], ids=lambda t: t[:30]
)
def test_sentences_in_other_languages_are_not_english(text):
    assert not reads_as_english(text)


@pytest.mark.parametrize(
    "text",
    ["fais la photo plus nette", "rends la photo plus lumineuse", "mejora la photo",
     "migliora la photo", "bitte mehr Schärfe", "maak de photo scherper"],
)  # fmt: skip
def test_words_english_shares_do_not_outvote_foreign_ones(text):
    """Words such as "photo" and "plus" are English too: the foreign verbs decide."""
    assert not reads_as_english(text)


@pytest.mark.parametrize("text", MASHES)
def test_keyboard_mashes_are_not_english(text):
    assert not reads_as_english(text)


@pytest.mark.parametrize("text", ENGLISH)
def test_english_with_typos_names_and_shorthand_reads_as_english(text):
    assert reads_as_english(text)


def test_no_held_out_prompt_of_the_seven_tasks_is_flagged():
    """The word list holds the training prompts' words, never the held-out ones."""
    from instructir_desktop.training.prompts import UNRELATED, load_corpus, split

    _, held = split(load_corpus())
    english = [p.text for p in held if p.task != UNRELATED]
    assert len(english) >= 300
    assert [t for t in english if not reads_as_english(t)] == []


@pytest.fixture(scope="module")
def encoder(tiny_pack):
    from instructir_desktop.core.packs import MANIFEST_NAME, PackManifest
    from instructir_desktop.core.text import InstructionEncoder

    return InstructionEncoder(PackManifest.load(tiny_pack / MANIFEST_NAME), tiny_pack)


def test_intent_and_plan_flag_it(encoder):
    german = "mach es heller bitte, das Foto ist zu dunkel"
    assert encoder.intent(german).note == NOT_ENGLISH_NOTE
    assert encoder.plan(german) == [encoder.intent(german)]  # not split into parts
    assert encoder.intent_row("asdkjh qwe zxc")["note"] == NOT_ENGLISH_NOTE
    assert encoder.intent("it's too dark").note == ""


def test_the_cli_refuses_in_one_line_saying_instructions_are_read_in_english(
    capsys, tmp_path, monkeypatch
):
    from PIL import Image

    from instructir_desktop.cli import main

    monkeypatch.delenv("INSTRUCTIR_MIN_CONFIDENCE", raising=False)
    photo = tmp_path / "in.png"
    Image.new("RGB", (32, 24), (40, 30, 20)).save(photo)
    for text in ("mach es heller bitte, das Foto ist zu dunkel", "asdkjh qwe zxc"):
        out = tmp_path / "out.png"
        args = ["-o", str(out), "--device", "cpu", "--backend", "torch"]
        code = main(["restore", str(photo), "-i", text, *args])
        _, err = capsys.readouterr()
        assert code != 0 and not out.exists()
        assert len(err.strip().splitlines()) == 1, err
        assert "English" in err


def test_the_app_offers_the_fixes_instead(qtbot, tiny_pack, tmp_path, monkeypatch):
    from PIL import Image

    from instructir_desktop.app.settings import Settings
    from instructir_desktop.ui import dialogs
    from instructir_desktop.ui.main_window import MainWindow

    monkeypatch.setattr(dialogs, "ask_unsaved_changes", lambda *_: "discard")
    settings = Settings()
    for name, value in {"backend": "torch", "min_confidence": 0.0}.items():
        settings.set(name, value)  # even with the confidence gate off
    window = MainWindow(settings, pack_dir=tiny_pack, bridge=False, autosave=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.session.model is not None, timeout=120_000)
    photo = tmp_path / "p.png"
    Image.new("RGB", (48, 32), (40, 30, 20)).save(photo)
    with qtbot.waitSignal(window.session.documentOpened, timeout=120_000):
        window.open_path(photo)
    session = window.session
    from PySide6.QtCore import Qt

    qtbot.keyClicks(window.chat.input, "das Foto ist zu dunkel")
    qtbot.keyClick(window.chat.input, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: session.chat.messages[0].state == "unclear", timeout=120_000)
    message = session.chat.messages[0]
    assert "English" in message.note
    widget = window.chat.widgets[message.id]
    assert widget.suggestions.isVisible() and len(widget.suggestions.buttons) == 7
    assert session.document.layers == []
