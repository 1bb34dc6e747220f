import { z } from "zod";

/** A boolean from JSON or from a form field ("true"/"false"). */
export const formBoolean = z.union([z.boolean(), z.enum(["true", "false"]).transform((v) => v === "true")]);

/** A string field that must be present and non-empty, bounded so no one can make us hash megabytes. */
export const requiredString = (max = 1024) => z.string().min(1).max(max);

export const emailField = z.string().min(3).max(320);
export const passwordField = z.string().min(1).max(1024);
export const nameField = z.string().trim().max(100);
