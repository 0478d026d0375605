# One image for every process of docker-compose.yml (web, ws, worker, beat, migrate).
FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.txt requirements.lock ./
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# Build-time placeholders (collectstatic reads the settings, it connects to nothing); the running
# containers get the real values from docker-compose.yml.
RUN SECRET_KEY=build-only DATABASE_URL=postgres://build@localhost/build FIELD_ENCRYPTION_KEY=YnVpbGQtb25seS1maWVsZC1rZXktbm90LWZvci1wcm8= \
    python manage.py collectstatic --noinput \
    && useradd --system --uid 1000 mdm && mkdir -p /data/media && chown -R mdm /data
USER mdm
ENV STORAGE_URL=file:///data/media WHITENOISE_USE_FINDERS=false
EXPOSE 8000 8001
CMD ["granian", "--interface", "wsgi", "--host", "0.0.0.0", "--port", "8000", "--workers", "2", "mdm.wsgi:application"]
