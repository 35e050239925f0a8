"""Shared titanoboa deployment for the directed fuzz-suite tests."""

import boa
import pytest
from boa_stack import deploy


@pytest.fixture(scope="session")
def devnet_stack():
    """The devnet listing, deployed (and compiled) once per session."""
    with boa.env.anchor():
        yield deploy()


@pytest.fixture
def s(devnet_stack):
    """The devnet listing in a snapshot rolled back after the test."""
    with boa.env.anchor():
        yield devnet_stack
