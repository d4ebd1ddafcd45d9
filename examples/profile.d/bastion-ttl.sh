# /etc/profile.d/bastion-ttl.sh: tell the people on a bastion when it goes.
# At login it prints the bastion's deadline; in interactive bash the prompt
# shows the time left. Needs the supervisor binary in the bastion image
# (see examples/healthcheck.Dockerfile); it asks the sidecar at
# 127.0.0.1:8311 first, so it needs none of the sidecar's environment.
if command -v supervisor >/dev/null 2>&1; then
	printf 'bastion-ttl: %s\n' "$(supervisor status --short 2>/dev/null || echo 'deadline unknown')"
	if [ -n "${BASH_VERSION:-}" ] && [ -n "${PS1:-}" ]; then
		__bastion_ttl_prompt() { __bastion_ttl_left=$(supervisor status --short 2>/dev/null | cut -d, -f1); }
		PROMPT_COMMAND="__bastion_ttl_prompt${PROMPT_COMMAND:+; $PROMPT_COMMAND}"
		PS1='[${__bastion_ttl_left:-bastion}] '"$PS1"
	fi
fi
