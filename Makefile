# Ballast: `make demo` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
TOOLS := .venv-tools
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(CURDIR)/node_modules/.bin:$(PATH)
NETWORK ?= ethereum:local:foundry

.PHONY: install build demo console deploy test test-unit test-contracts fuzz lint format bench backtest calibrate clean

install: $(BIN)/.installed node_modules/.installed $(TOOLS)/.installed

# The stamp depends on pyproject.toml: editing dependencies reinstalls; otherwise a no-op.
$(BIN)/.installed: pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,keeper]'
	@touch $@

# `npm ci` installs exactly the lock and never rewrites it (`npm install` would add other
# platforms' optional packages to the tracked package-lock.json).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@node_modules/.bin/anvil --version > /dev/null
	@touch $@

# mamushi pins click==8.1.3 while eth-ape needs >=8.1.6: the linters get their own venv.
$(TOOLS)/.installed: Makefile
	@test -x $(TOOLS)/bin/python || $(PY) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet mamushi==0.1.2 ruff==0.8.6
	@touch $@

# Ape caches bytecode per deployable source and does not see edits to the modules it
# imports (they are excluded from compilation), so any contract change forces a rebuild.
CONTRACT_SOURCES := $(shell find contracts -name '*.vy' -o -name '*.vyi')
.build/.stamp: $(CONTRACT_SOURCES) ape-config.yaml | $(BIN)/.installed
	ape compile --force
	@touch $@

build: install .build/.stamp

# The demo starts its own anvil: ape-foundry's always records step traces, which for the
# replay's thousands of transactions takes gigabytes. `ape run` connects to the running node
# (same mnemonic and accounts as Ape's test accounts); ANVIL_PORT must match ape-config.yaml.
ANVIL_PORT ?= 8545
ANVIL_DEMO := anvil --port $(ANVIL_PORT) --silent --accounts 10 --balance 10000 \
	--mnemonic "test test test test test test test test test test test junk" \
	--block-base-fee-per-gas 0 --gas-price 0 --hardfork cancun

# The crash windows `make demo` replays, first:last:report folder, one after the other on the
# same anvil: March 2020 (COVID) and the weekend of 2021-12-04.
DEMO_WINDOWS ?= 2020-03-11:2020-03-14:reports/demo 2021-12-03:2021-12-06:reports/demo-2021-12
demo: build
	@$(ANVIL_DEMO) & pid=$$!; trap "kill $$pid" EXIT; \
	for i in $$(seq 100); do (: > /dev/tcp/127.0.0.1/$(ANVIL_PORT)) 2>/dev/null && break; sleep 0.1; done; \
	for w in $(DEMO_WINDOWS); do IFS=: read -r first last out <<< "$$w"; \
	  PYTHONWARNINGS=ignore::UserWarning ape run demo --network $(NETWORK) -v WARNING \
	    --from $$first --to $$last --out $$out $(DEMO_ARGS) || exit 1; \
	done

# ape-vyper 0.8.12's config model has a forward reference that pydantic-settings 2.16 warns
# about (IncompleteFieldDefinitionWarning) whenever it loads: harmless, so the console starts quiet.
console: export PYTHONWARNINGS := ignore:Field 'import_remapping' has an incomplete definition
console: build
	ape console --network $(NETWORK)

deploy: build
	ape run deploy --network $(NETWORK) $(DEPLOY_ARGS)

# ape-foundry starts anvil with --steps-tracing, which keeps every step of every transaction
# in the node's memory (the crash replay's option books and the gas benchmarks took one past
# 20 GB): the suites, the benchmarks and the fuzz campaign run scripts/anvil-lean/anvil,
# the same node without it. `make console` keeps Ape's (traces for debugging).
test bench gas-snapshot fuzz: export PATH := $(CURDIR)/scripts/anvil-lean:$(PATH)

# Three processes on two cores: the node-free suites (numpy twin, titanoboa and revm fuzz, in
# .test-logs/offline.log) and the anvil suites in two sessions, each with its own anvil
# (APE_FOUNDRY_HOST): ANVIL_TESTS_A (the end-to-end tests and the three heaviest contract
# modules, about half the anvil time) on this console, the other contract tests in
# .test-logs/anvil-b.log. Each log follows at the end.
OFFLINE_TESTS := tests/unit tests/fuzz
ANVIL_TESTS_A := tests/e2e tests/contracts/test_benchmarks.py \
	tests/contracts/test_risk_properties.py tests/contracts/test_submit.py
# Keeper workers in their own processes against the test anvil: their transactions outlive
# Ape's per-test chain isolation, so they run in a session of their own, after the others.
OWN_SESSION_TESTS := tests/contracts/test_keeper_workers.py
TEST_PORT_A ?= 8545
TEST_PORT_B ?= 8546
APE_TEST := ape test --network $(NETWORK) -p no:cacheprovider $(PYTEST_ARGS)
test: build lint redis-server
	@mkdir -p .test-logs; \
	python -m pytest $(OFFLINE_TESTS) -p no:ape_test -p no:cacheprovider $(PYTEST_ARGS) \
	  > .test-logs/offline.log 2>&1 & offline_pid=$$!; \
	APE_FOUNDRY_HOST=http://127.0.0.1:$(TEST_PORT_B) $(APE_TEST) tests/contracts \
	  $(addprefix --ignore=,$(ANVIL_TESTS_A) $(OWN_SESSION_TESTS)) > .test-logs/anvil-b.log 2>&1 & \
	b_pid=$$!; trap "kill $$offline_pid $$b_pid 2>/dev/null" INT TERM; \
	echo "$(OFFLINE_TESTS) and the other contract tests run beside this suite (progress: .test-logs/)"; \
	APE_FOUNDRY_HOST=http://127.0.0.1:$(TEST_PORT_A) $(APE_TEST) $(ANVIL_TESTS_A); a=$$?; \
	wait $$b_pid; b=$$?; \
	own=skipped; if [ $$a -eq 0 ] && [ $$b -eq 0 ]; then \
	  APE_FOUNDRY_HOST=http://127.0.0.1:$(TEST_PORT_A) $(APE_TEST) $(OWN_SESSION_TESTS); own=$$?; fi; \
	wait $$offline_pid; offline=$$?; \
	echo "=== other contract tests ==="; cat .test-logs/anvil-b.log; \
	echo "=== $(OFFLINE_TESTS) ==="; cat .test-logs/offline.log; \
	echo "anvil suites: exit $$a, $$b, $$own (own session); $(OFFLINE_TESTS): exit $$offline"; \
	test $$a -eq 0 -a $$b -eq 0 -a "$$own" = 0 -a $$offline -eq 0

# The keeper-worker tests (tests/contracts/test_keeper_workers.py) start their own Redis server
# on a free port: the Debian package, installed here when missing (as root, or through sudo).
.PHONY: redis-server
redis-server:
	@command -v redis-server > /dev/null || { \
	  sudo=""; [ "$$(id -u)" -eq 0 ] || sudo="sudo"; \
	  echo "installing redis-server (Debian package) for the keeper-worker tests"; \
	  $$sudo apt-get update -qq && $$sudo apt-get install -y -qq redis-server > /dev/null; }
	@command -v redis-server > /dev/null

test-unit: install
	ape test tests/unit --network $(NETWORK) $(PYTEST_ARGS)

test-contracts: build
	ape test tests/contracts --network $(NETWORK) $(PYTEST_ARGS)

# Long campaigns on 2 cores. First the differentials (20,000 revm and 100 devnet
# portfolios) and the other properties at HYPOTHESIS_PROFILE=soak (2,000 examples each).
# Then the stateful model's long profile on revm (no node): two processes, one per core,
# each FUZZ_LONG_EXAMPLES (2,500) x up to 100 steps in the quick profile's mix (options,
# hostile tokens), about 540,000 steps in all, every invariant checked after every step
# (about 7 minutes at the rate in benchmarks/RESULTS.md); failures land in
# tests/fuzz/.hypothesis and replay first.
FUZZ_LONG_EXAMPLES ?= 2500
fuzz: build
	HYPOTHESIS_PROFILE=soak DIFFERENTIAL_EXAMPLES=100 \
	  ape test tests/contracts/test_differential.py --network $(NETWORK) -p no:cacheprovider
	HYPOTHESIS_PROFILE=soak DIFFERENTIAL_EXAMPLES_REVM=20000 \
	  python -m pytest tests/fuzz -p no:ape_test -p no:cacheprovider \
	  --deselect tests/fuzz/test_stateful.py::TestBallast::runTest \
	  --deselect tests/fuzz/test_stateful.py::TestHostile::runTest \
	  --deselect tests/fuzz/test_stateful.py::TestOptions::runTest
	for i in 1 2; do \
	  FUZZ_PROFILE=long FUZZ_LONG_EXAMPLES=$(FUZZ_LONG_EXAMPLES) \
	    python -m pytest tests/fuzz/test_stateful.py -p no:ape_test -p no:cacheprovider -q & \
	done; \
	status=0; for job in $$(jobs -p); do wait $$job || status=1; done; exit $$status

lint: $(TOOLS)/.installed
	$(TOOLS)/bin/ruff check .
	$(TOOLS)/bin/ruff format --check .
	$(TOOLS)/bin/mamushi --check contracts

format: $(TOOLS)/.installed
	$(TOOLS)/bin/ruff check --fix .
	$(TOOLS)/bin/ruff format .
	$(TOOLS)/bin/mamushi contracts

bench: build
	python -m benchmarks $(BENCH_ARGS)

# The integration kit (integration/): every deployable's ABI, Solidity interfaces with the
# structs, EIP-712 type strings and hashes; commit the result (a test fails when it is stale).
.PHONY: abi
abi: | $(BIN)/.installed
	python integration/make_abi.py

# The committed gas snapshot (benchmarks/gas-snapshot.json): gas per operation, runtime
# bytecode per deployable, compiler; tests/contracts/test_benchmarks.py fails when it is stale.
.PHONY: gas-snapshot
gas-snapshot: export PYTHONWARNINGS := ignore:Field 'import_remapping' has an incomplete definition
gas-snapshot: .build/.stamp | node_modules/.installed
	python -m benchmarks.snapshot

clean:
	rm -rf $(VENV) $(TOOLS) node_modules .build .pytest_cache
