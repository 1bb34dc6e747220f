ALTER TABLE "sessions" ADD COLUMN "refresh_window_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "sessions" ADD COLUMN "refresh_window_hits" integer DEFAULT 0 NOT NULL;