import pytest

from trainers import tiny


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A freshly built tiny Qwen2-VL checkpoint (random weights), shared by the session."""
    return str(tiny.build(tmp_path_factory.mktemp("models") / "tiny", size="tiny", seed=0))
