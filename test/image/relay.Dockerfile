# The image tests' recording relays (test/image/relay_server.py on test/harness/relays.py):
# aiosmtpd and trustme from Debian, so the build needs nothing but Debian's archive.
FROM debian:12-slim
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      python3-aiosmtpd python3-trustme procps >/dev/null \
 && rm -rf /var/lib/apt/lists/*
ENV PYTHONPATH=/tests PYTHONUNBUFFERED=1
