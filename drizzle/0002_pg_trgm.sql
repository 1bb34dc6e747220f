-- Custom SQL migration file, put your code below! --
-- Trigram indexes (the admin user search) need pg_trgm: a contrib extension of Postgres (trusted since 13) and of PGlite.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
