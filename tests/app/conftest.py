"""Fixtures shared by the app's test modules (a session fixture imported into each module
would start once per module)."""

from tests.app.dagster_fixtures import dagster_app  # noqa: F401 - registers the fixture
