CREATE TABLE "revocations" (
	"entry" text PRIMARY KEY NOT NULL,
	"revoked_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE INDEX "revocations_expires_at_idx" ON "revocations" USING btree ("expires_at");