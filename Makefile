# coop: build, install and uninstall.
#
#   make                                   build target/release/coop, its man pages and completions
#   make install [PREFIX=/usr/local] [DESTDIR=]
#   make uninstall [PREFIX=/usr/local] [DESTDIR=]
#
# Installs: $(PREFIX)/bin/coop; a man page per command in $(PREFIX)/share/man/man1 (coop.1,
# coop-run.1, ...: generated from the command line definitions by `coop man`); bash, zsh and
# fish completions (`coop completion SHELL`); under $(PREFIX)/share/coop: examples/hooks.d
# (oci-hooks(5) definitions, not active until copied into a hooks.d directory), hooks/ (the
# hook program they run) and contrib/ (podman, containerd and Kubernetes configuration).
# COOP=PATH installs that binary instead of building one; OUT is where generated files go.

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man/man1
DATADIR ?= $(PREFIX)/share/coop
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
COOP ?= target/release/coop
OUT ?= target/dist
CARGO ?= cargo

.PHONY: all build install uninstall clean
all: build $(OUT)/.stamp

build:
	@echo "make: cargo build --release (about 8 min on 2 cores from a clean checkout)"
	$(CARGO) build --release --locked

$(COOP):
	@echo "make: cargo build --release (about 8 min on 2 cores from a clean checkout)"
	$(CARGO) build --release --locked

$(OUT)/.stamp: $(COOP)
	rm -rf $(OUT)
	mkdir -p $(OUT)/man $(OUT)/completions
	$(COOP) man $(OUT)/man
	$(COOP) completion bash > $(OUT)/completions/coop.bash
	$(COOP) completion zsh > $(OUT)/completions/_coop
	$(COOP) completion fish > $(OUT)/completions/coop.fish
	touch $@

install: $(OUT)/.stamp
	install -D -m 0755 $(COOP) $(DESTDIR)$(BINDIR)/coop
	install -d $(DESTDIR)$(MANDIR)
	install -m 0644 $(OUT)/man/*.1 $(DESTDIR)$(MANDIR)/
	install -D -m 0644 $(OUT)/completions/coop.bash $(DESTDIR)$(BASHCOMPDIR)/coop
	install -D -m 0644 $(OUT)/completions/_coop $(DESTDIR)$(ZSHCOMPDIR)/_coop
	install -D -m 0644 $(OUT)/completions/coop.fish $(DESTDIR)$(FISHCOMPDIR)/coop.fish
	install -d $(DESTDIR)$(DATADIR)/examples/hooks.d $(DESTDIR)$(DATADIR)/hooks
	install -m 0644 hooks/examples/*.json $(DESTDIR)$(DATADIR)/examples/hooks.d/
	install -m 0644 hooks/README.md $(DESTDIR)$(DATADIR)/examples/hooks.d/README.md
	install -m 0755 hooks/record-state.sh $(DESTDIR)$(DATADIR)/hooks/record-state.sh
	rm -rf $(DESTDIR)$(DATADIR)/contrib
	cp -R contrib $(DESTDIR)$(DATADIR)/contrib
	chmod -R u=rwX,go=rX $(DESTDIR)$(DATADIR)/contrib

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/coop $(DESTDIR)$(MANDIR)/coop.1 $(DESTDIR)$(MANDIR)/coop-*.1
	rm -f $(DESTDIR)$(BASHCOMPDIR)/coop $(DESTDIR)$(ZSHCOMPDIR)/_coop $(DESTDIR)$(FISHCOMPDIR)/coop.fish
	rm -rf $(DESTDIR)$(DATADIR)

clean:
	rm -rf $(OUT)
