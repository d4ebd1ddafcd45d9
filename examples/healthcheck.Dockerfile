# The health-check variant: the supervisor binary inside your bastion image.
# Build the supervisor image from this repository first:
#   docker build -t bastion-ttl-supervisor .
FROM bastion-ttl-supervisor AS supervisor

FROM lscr.io/linuxserver/openssh-server:latest
COPY --from=supervisor /supervisor /usr/local/bin/supervisor
# The task definition's healthCheck runs: /usr/local/bin/supervisor check
