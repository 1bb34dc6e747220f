-- Refresh tokens now live in their session's row (one single-row update per rotation). Tokens issued before this
-- migration are not carried over: their holders sign in again once. Use is read from sessions.last_used_at, so
-- users.last_active_at goes; the guest sweep's index moves to created_at. Written to apply cleanly over a database
-- that ran an earlier draft of it.
DROP TABLE IF EXISTS "refresh_tokens" CASCADE;--> statement-breakpoint
DROP INDEX IF EXISTS "users_anonymous_idx";--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN IF NOT EXISTS "refresh_gen" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN IF NOT EXISTS "refresh_hash" text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN IF NOT EXISTS "refresh_issued_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN IF NOT EXISTS "refresh_expires_at" timestamp with time zone DEFAULT now() NOT NULL;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN IF NOT EXISTS "refresh_sealed_next" text;--> statement-breakpoint
CREATE INDEX "users_anonymous_idx" ON "users" USING btree ("created_at") WHERE "users"."is_anonymous";--> statement-breakpoint
ALTER TABLE "users" DROP COLUMN IF EXISTS "last_active_at";