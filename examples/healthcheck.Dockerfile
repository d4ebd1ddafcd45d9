# The health-check variant: the supervisor binary inside your bastion image.
# Build the supervisor image from this repository first (or use a released one):
#   docker build -t bastion-ttl-supervisor:v0.1.0 .
# PID 1 of this image (s6-overlay's /init) ends the container on SIGTERM, which
# is what the check's fail-safe sends at deadline + grace.
FROM bastion-ttl-supervisor:v0.1.0 AS supervisor

FROM lscr.io/linuxserver/openssh-server:10.3_p1-r2-ls243
COPY --from=supervisor /supervisor /usr/local/bin/supervisor
# The task definition's healthCheck runs: /usr/local/bin/supervisor check
