# The two commands of the quick start are `make up` and `make test`; the rest are conveniences.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= gateway,classifier,segmenter,train,dev
# Strict editable installs link each file: re-install when a package folder gains or loses one.
PACKAGE_DIRS := shared shared/storage services/gateway services/classifier services/segmenter cli

.PHONY: up up-cloud down status logs install test lint browser emulators clean

up: install  ## install, then start the three services on 127.0.0.1:8080-8082
	$(BIN)/branet up

up-cloud: install emulators  ## the same, with the GCS and Firestore emulators as the stores
	$(BIN)/branet up --emulated-cloud

down:  ## stop the services
	$(BIN)/branet down

status:  ## liveness and readiness of each service
	$(BIN)/branet status

logs:  ## the services' recent logs (make logs ARGS=-f to follow)
	$(BIN)/branet logs $(ARGS)

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(PACKAGE_DIRS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]' --config-settings editable_mode=strict
	touch $@

test: install browser emulators lint  ## install, then lint, type-check and run every test
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p branet_shared -p branet_gateway -p branet_classifier -p branet_segmenter -p branet_cli
	$(BIN)/mypy tests bench
	@if command -v docker-compose >/dev/null; then docker-compose config -q && echo "docker-compose.yml valid"; fi

emulators: tools/firestore-emulator/node_modules/.installed  ## the Firestore emulator's npm packages

tools/firestore-emulator/node_modules/.installed: tools/firestore-emulator/package-lock.json
	@if command -v npm >/dev/null; then \
		cd tools/firestore-emulator && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "note: install Node.js for the Firestore emulator tests"; fi

browser:  ## headless Chromium for the offline-docs test (Debian package)
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -q chromium >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; }; \
		else echo "note: install Chromium to run the offline-docs test"; fi; }

clean:
	rm -rf $(VENV) build .mypy_cache .ruff_cache .pytest_cache
