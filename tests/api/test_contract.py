"""docs/api-contract.md lists what the OpenAPI schema says, so the contract is written once (in the routes)."""

from qkatlas.api.contract import BEGIN, DOC, END, render


def test_the_contract_document_is_generated_from_the_current_routes(client):
    doc = DOC.read_text()
    assert BEGIN in doc and END in doc
    assert render(doc, client.app.openapi()) == doc, \
        "docs/api-contract.md is out of date: run `.venv/bin/python -m qkatlas.api.contract`"


def test_the_contract_names_every_endpoint_and_json_model(client):
    schema = client.app.openapi()
    doc = DOC.read_text()
    for path in schema["paths"]:
        assert f"`{path}`" in doc
    assert "`Neighbours`" in doc and "float32 (layers, heads, P, dim)" in doc
