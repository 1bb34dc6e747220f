import { errors } from "../../src/errors";

/** The plugin's failures; both use core codes (404 NOT_FOUND, 400 VALIDATION_ERROR), so it declares none of its own. */
export const webhookErrors = {
  deliveryNotFound: () => errors.notFound("No such webhook delivery"),
  invalidCursor: () => errors.validation([{ path: "cursor", message: "is not a cursor this listing gave" }]),
};
