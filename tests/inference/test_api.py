import pytest

from inference.api import InvalidRequestError, Sampler


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Euler a", Sampler.EULER_A),
        ("euler_a", Sampler.EULER_A),
        ("euler", Sampler.EULER),
        ("DPM++ 2M Karras", Sampler.DPMPP_2M_KARRAS),
        ("dpm++2m", Sampler.DPMPP_2M_KARRAS),
        ("dpmpp_2m_karras", Sampler.DPMPP_2M_KARRAS),
        ("DDIM", Sampler.DDIM),
        ("unipc", Sampler.UNIPC),
        ("LCM", Sampler.LCM),
    ],
)
def test_sampler_names_parse(text, expected):
    assert Sampler.parse(text) is expected


def test_unknown_sampler_lists_the_choices():
    with pytest.raises(InvalidRequestError, match="Euler a"):
        Sampler.parse("heun++")
