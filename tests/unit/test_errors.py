from qkatlas.errors import without_paths


def test_without_paths_names_a_server_folder_by_its_last_part():
    assert without_paths("put the model folder at /srv/models/gpt2 (or set X)") == \
        "put the model folder at …/gpt2 (or set X)"
    assert without_paths("in folder '/tmp/x/absent-model/' could not") == "in folder '…/absent-model' could not"
    assert without_paths("at ~/models/minilm") == "at …/minilm"


def test_without_paths_keeps_urls_hub_ids_and_relative_names():
    for message in ("https://huggingface.co cannot be reached", "hf download openai-community/gpt2",
                    "projections/pca-2d/L00H00.npy (missing)", "2/3 heads"):
        assert without_paths(message) == message
