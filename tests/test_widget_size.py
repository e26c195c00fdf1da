"""The widget's size budget: what a host page downloads, gzipped, stays at most 25 KB."""

import gzip

import pytest

# The size of a script.
pytestmark = pytest.mark.database_independent
BUDGET = 25 * 1024


def test_the_served_widget_script_is_at_most_25_kb_gzipped(client):
    response = client.get("/widget.js")
    assert response.status_code == 200
    size = len(gzip.compress(response.data, compresslevel=9))
    print(f"widget.js: {len(response.data)} bytes, {size} bytes gzipped (budget {BUDGET})")
    assert size <= BUDGET, f"widget.js is {size} bytes gzipped, over the {BUDGET}-byte budget"
