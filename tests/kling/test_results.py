"""Result items in both spellings: what each product's page shows is read, and written back."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from klingwatch.kling.results import Results, format_amount, format_seconds

MP3, WAV = "https://cdn/a.mp3", "https://cdn/a.wav"
#: A text-to-audio result as kling-text-to-audio.md shows it.
TEXT_TO_AUDIO = {
    "audios": [
        {"id": "a", "url_mp3": MP3, "url_wav": WAV, "duration_mp3": "3.0", "duration_wav": "3.0"}
    ]
}


@pytest.mark.parametrize(
    "result",
    [
        pytest.param(
            {"videos": [{"id": "v", "url": "https://cdn/v.mp4", "duration": "5.1"}]}, id="video"
        ),
        pytest.param(TEXT_TO_AUDIO, id="text-to-audio"),
        pytest.param({"audios": [{"id": "a", "url": MP3, "duration": "4.2"}]}, id="tts"),
        pytest.param(
            {"images": [{"index": 0, "url_1": "https://1", "url_2": "https://2"}]},
            id="ai-multi-shot",
        ),
        pytest.param(
            {"voices": [{"voice_id": "v", "voice_name": "n", "trial_url": MP3, "owned_by": "k"}]},
            id="voice",
        ),
        pytest.param(
            {
                "elements": [
                    {
                        "element_id": 0,
                        "element_name": "n",
                        "element_description": "d",
                        "reference_type": "video_refer",
                        "tag_list": [],
                        "owned_by": "kling",
                        "status": "succeed",
                    }
                ]
            },
            id="element",
        ),
    ],
)
def test_a_legacy_result_is_written_back_as_its_page_shows_it(result: dict[str, Any]) -> None:
    assert Results.from_legacy(result).to_legacy() == result


def test_legacy_audio_spellings_become_one_audio_and_the_new_spelling() -> None:
    results = Results.from_legacy(TEXT_TO_AUDIO)

    (audio,) = results.audios
    assert (audio.url, audio.mp3_url, audio.wav_url, audio.duration) == (MP3, MP3, WAV, 3.0)
    assert audio.model_extra == {}  # the aliases are read, not kept twice
    assert results.to_outputs() == [
        {
            "type": "audio",
            "id": "a",
            "mp3_url": MP3,
            "wav_url": WAV,
            "mp3_duration": "3.0",
            "wav_duration": "3.0",
        }
    ]
    assert Results.from_outputs(results.to_outputs(), "t").to_legacy() == TEXT_TO_AUDIO


def test_the_shots_of_a_multi_shot_item_are_images_of_their_own() -> None:
    results = Results.from_legacy(
        {"images": [{"index": 0, "url_2": "https://2", "url_1": "https://1"}]}
    )

    assert [(i.url, i.shot) for i in results.images] == [("https://1", 1), ("https://2", 2)]
    assert results.to_outputs() == [
        {"type": "image", "index": 0, "url": "https://1"},
        {"type": "image", "index": 0, "url": "https://2"},
    ]


def test_voices_and_elements_are_spelled_by_standard() -> None:
    outputs = [
        {"type": "voice", "id": "vo1", "name": "mine", "url": MP3, "status": "succeeded"},
        {"type": "element", "id": "12", "name": "Grace", "status": "succeeded", "tags": []},
    ]
    results = Results.from_outputs(outputs, "t")

    assert (results.voices[0].id, results.elements[0].name) == ("vo1", "Grace")
    assert results.to_outputs() == outputs
    assert results.to_legacy() == {
        "voices": [
            {"voice_id": "vo1", "voice_name": "mine", "trial_url": MP3, "status": "succeed"}
        ],
        "elements": [{"element_id": 12, "element_name": "Grace", "status": "succeed", "tags": []}],
    }


@pytest.mark.parametrize(
    ("seconds", "text"), [(5.1, "5.1"), (3.0, "3.0"), (5.0, "5.0"), (12.345, "12.345")]
)
def test_durations_are_written_as_kling_writes_them(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


@pytest.mark.parametrize(
    ("amount", "text"), [("1.50", "1.5"), ("3", "3"), ("100", "100"), ("0.25", "0.25")]
)
def test_amounts_are_written_without_trailing_zeros(amount: str, text: str) -> None:
    assert format_amount(Decimal(amount)) == text
