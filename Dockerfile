# One image for web, worker and beat (docker-compose.yml picks the command).
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
COPY scripts/copy_assets.mjs scripts/
RUN npm ci --no-audit --no-fund && node scripts/copy_assets.mjs

FROM python:3.12-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# DejaVu lets create_file's PDFs show any script, not only Latin-1.
RUN apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY requirements/base.lock requirements/
RUN pip install --no-cache-dir -r requirements/base.lock
COPY . .
COPY --from=assets /app/static/vendor static/vendor
RUN useradd --create-home engine && mkdir -p var && chown engine var
USER engine
EXPOSE 8000
