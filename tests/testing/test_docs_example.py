"""docs/testing-your-strategy.md's worked example is a real test file: it runs here as a
user would run it (a fresh directory, slob's plugin from its entry point), and the page
shows it verbatim."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "test_strategy_recovers.py"
PAGE = ROOT / "docs" / "testing-your-strategy.md"


def test_the_worked_example_passes_as_a_users_test(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = strict\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_strategy_recovers=EXAMPLE.read_text())
    result = pytester.runpytest_subprocess("-W", "error", "-p", "no:cacheprovider", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_the_page_shows_the_example_verbatim() -> None:
    code = EXAMPLE.read_text()
    page = PAGE.read_text()
    assert f"```python\n{code}```" in page, "docs/testing-your-strategy.md must quote docs/examples/" \
        "test_strategy_recovers.py exactly (copy the file into its python block)"
