from pathlib import Path

from qkatlas.demo import LATE_DEFAULTS, REAL_DEFAULTS, TINY_DEFAULTS, Step, plan
from qkatlas.settings import Settings

from ..conftest import needs_shared


def test_settings_come_from_qkatlas_environment_variables():
    s = Settings.from_env({"QKATLAS_DATA_DIR": "/x/y", "QKATLAS_PORT": "9001", "QKATLAS_OFFLINE": "yes"})
    assert s.data_dir == Path("/x/y") and s.port == 9001 and s.offline is True
    assert Settings.from_env({"QKATLAS_PORT": "9001"}, port=7000).port == 7000


@needs_shared
def test_demo_builds_real_weights_when_they_are_local_pca_first_and_the_decoder_after():
    steps = plan(Settings(demo_methods="umap,pca"))
    assert [(s.model, s.corpus, s.limit) for s in steps[:2]] == REAL_DEFAULTS
    late = [(s.model, s.method, s.dim) for s in steps if s.model == "smollm2"]
    assert late[:2] == [("smollm2", "pca", 2), ("smollm2", "pca", 3)] and len(late) == 4
    # the first screen's PCA layouts come first, then the decoder's PCA, then UMAP for all
    assert [(s.method, s.dim) for s in steps] == ([("pca", 2)] * 2 + [("pca", 3)] * 2 + [("pca", 2), ("pca", 3)]
                                                   + [("umap", 2)] * 3 + [("umap", 3)] * 3)
    assert [(m, c, n) for m, c, n in LATE_DEFAULTS] == [("smollm2", "default", None)]


def test_demo_falls_back_to_labelled_random_models_without_local_weights(tmp_path):
    steps = plan(Settings(shared_models=tmp_path, demo_methods="pca"))
    assert {(s.model, s.corpus, s.limit) for s in steps} == set(TINY_DEFAULTS)
    assert all(s.model.startswith("tiny-") for s in steps)


def test_demo_models_can_be_chosen():
    steps = plan(Settings(demo_models="tiny-bert", demo_methods="pca"))
    assert steps == [Step("tiny-bert", "default", None, "pca", 2), Step("tiny-bert", "default", None, "pca", 3)]
