"""Shared titanoboa deployment for the directed fuzz-suite tests."""

import boa
import pytest
from ballast_machine import stack
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


@pytest.fixture(scope="session")
def machine_stack():
    """The stateful model's stack (ballast_machine.stack), deployed once per session.

    titanoboa's pytest plugin rolls every fixture's deployments back when the fixture is
    torn down; session scope keeps the model's cached stack alive for every module that
    uses it, and each example runs in its own snapshot on top of it."""
    return stack()


@pytest.fixture(scope="session")
def hostile_stack():
    """The stateful model's stack with the hostile tokens listed (`HostileMachine`)."""
    return stack(hostile=True)
