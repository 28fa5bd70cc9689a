"""Settings: validation and the environment overrides."""

from __future__ import annotations

import pytest

from amorsize_exec import Settings
from amorsize_exec._config import in_worker_process


def test_defaults_are_the_cards_rule() -> None:
    assert Settings().min_speedup == 1.2


def test_env_overrides_fields() -> None:
    s = Settings.from_env(
        {"AMORSIZE_EXEC_MIN_SPEEDUP": "1.5", "AMORSIZE_EXEC_SAMPLE_MIN_ITEMS": "7"}
    )
    assert (s.min_speedup, s.sample_min_items) == (1.5, 7)


def test_env_with_a_bad_value_names_it() -> None:
    with pytest.raises(ValueError, match="AMORSIZE_EXEC_MIN_SPEEDUP"):
        Settings.from_env({"AMORSIZE_EXEC_MIN_SPEEDUP": "fast"})


@pytest.mark.parametrize("change", [{"min_speedup": 0.5}, {"target_chunk_s": -1.0}])
def test_invalid_settings_are_refused(change: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="Settings"):
        Settings().replace(**change)


def test_worker_marker() -> None:
    assert in_worker_process({"AMORSIZE_EXEC_WORKER": "1"})
    assert not in_worker_process({})
