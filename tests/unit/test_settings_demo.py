from pathlib import Path

from qkatlas.demo import REAL_DEFAULTS, TINY_DEFAULTS, Step, plan
from qkatlas.settings import Settings

from ..conftest import needs_shared


def test_settings_come_from_qkatlas_environment_variables():
    s = Settings.from_env({"QKATLAS_DATA_DIR": "/x/y", "QKATLAS_PORT": "9001", "QKATLAS_OFFLINE": "yes"})
    assert s.data_dir == Path("/x/y") and s.port == 9001 and s.offline is True
    assert Settings.from_env({"QKATLAS_PORT": "9001"}, port=7000).port == 7000


@needs_shared
def test_demo_builds_real_weights_when_they_are_local_pca_first():
    steps = plan(Settings(demo_methods="pca,umap"))
    assert [(s.model, s.corpus, s.limit) for s in steps[:2]] == REAL_DEFAULTS
    assert [(s.method, s.dim) for s in steps] == [("pca", 2)] * 2 + [("pca", 3)] * 2 + [("umap", 2)] * 2 + [("umap", 3)] * 2


def test_demo_falls_back_to_labelled_random_models_without_local_weights(tmp_path):
    steps = plan(Settings(shared_models=tmp_path, demo_methods="pca"))
    assert {(s.model, s.corpus, s.limit) for s in steps} == set(TINY_DEFAULTS)
    assert all(s.model.startswith("tiny-") for s in steps)


def test_demo_models_can_be_chosen():
    steps = plan(Settings(demo_models="tiny-bert", demo_methods="pca"))
    assert steps == [Step("tiny-bert", "default", None, "pca", 2), Step("tiny-bert", "default", None, "pca", 3)]
