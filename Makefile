PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-quick bench clean faults fuzz constraints browser

# Create the virtualenv and install espstream with its embedded broker and test tools, the runtime
# packages at the versions of constraints.txt (the ones the image installs).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[embedded,test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/espstream run

test: $(STAMP) browser
	$(BIN)/python -m pytest -n 4

# Debian's chromium for the console's browser tests (driven by playwright; nothing downloads a browser).
browser:
	@command -v chromium >/dev/null || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)

# The tests without a broker (tests/unit and the quick part of tests/integration), for the edit loop: about a minute.
test-quick: $(STAMP)
	$(BIN)/python -m pytest -n 4 -m 'not broker and not faults'

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run

# The fault suite (tests/faults, left out of `make test`): the normalizer and a consumer
# SIGKILLed, the broker cut off under load, a slow consumer group; `espstream audit` judges.
# About 2-3 minutes; prints each scenario's audit and the durations.
faults: $(STAMP)
	$(BIN)/python -m pytest tests/faults -m faults -rA --durations=0

# Coverage-guided fuzzing of every ESP parser (atheris), FUZZ_SECONDS each; a crash leaves its
# input in fuzz-crashes/ (each ESP still runs; the target fails at the end). The hypothesis fuzz suite (tests/unit/normalizer/fuzz) runs in `make test`.
FUZZ_SECONDS ?= 60
FUZZ_ESPS ?= amazon_ses brevo mailersend mailgun mailjet mailtrap mandrill postal postmark resend sendgrid sendinblue sparkpost unisender_go
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[embedded,test,fuzz]'
	mkdir -p fuzz-crashes
	status=0; for esp in $(FUZZ_ESPS); do \
		echo "== $$esp ($(FUZZ_SECONDS) s)"; \
		$(BIN)/python -m tests.unit.normalizer.fuzz.atheris_normalize $$esp -max_total_time=$(FUZZ_SECONDS) \
			-artifact_prefix=fuzz-crashes/$$esp- -print_final_stats=1 || status=1; \
	done; exit $$status

# Pin the runtime packages (and the django extra's) to the versions the tests run with, for the
# image and the virtualenv: run after changing a dependency in pyproject.toml, then `make test`.
constraints: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/python -m pip freeze --exclude-editable > $(VENV)/tested.txt
	$(BIN)/pip-compile --quiet --extra django --strip-extras --no-header --no-annotate --no-emit-index-url \
		--no-emit-find-links -c $(VENV)/tested.txt -o constraints.txt pyproject.toml

clean:
	rm -rf $(VENV)
