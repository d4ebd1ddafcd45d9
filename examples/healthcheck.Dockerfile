# The health-check variant: the supervisor binary inside your bastion image.
# (With the sidecar variant, the same two COPY lines give the people on the
# bastion `supervisor status` and `supervisor extend`, and the login banner.)
# Build it from the repository's root, on the released supervisor image:
#   docker build -f examples/healthcheck.Dockerfile -t bastion-ssh .
# PID 1 of this image (s6-overlay's /init) ends the container on SIGTERM, which
# is what the check's fail-safe sends at deadline + grace.
FROM ghcr.io/bastion-ttl/supervisor:v0.1.0 AS supervisor

FROM lscr.io/linuxserver/openssh-server:10.3_p1-r2-ls243
COPY --from=supervisor /supervisor /usr/local/bin/supervisor
# The countdown for the people who log in: a banner and a warning prompt.
COPY examples/profile.d/bastion-ttl.sh /etc/profile.d/bastion-ttl.sh
# The task definition's healthCheck runs: /usr/local/bin/supervisor check
