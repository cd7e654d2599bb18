/**
 * Errors of the served API in OpenAI's envelope: `{error: {message, type, param, code}}`, with
 * the status codes the official API uses, so SDK clients raise their usual error classes.
 * Messages never carry a key (the server never echoes an Authorization header).
 */

export type ApiErrorType = "invalid_request_error" | "server_error" | "requests" | "authentication_error";

export interface ApiErrorBody {
  error: { message: string; type: ApiErrorType; param: string | null; code: string | null };
}

export class ApiError extends Error {
  readonly status: number;
  readonly type: ApiErrorType;
  readonly param: string | null;
  readonly code: string | null;
  constructor(
    status: number,
    message: string,
    opts: { type?: ApiErrorType; param?: string | null; code?: string | null } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.type = opts.type ?? (status >= 500 ? "server_error" : "invalid_request_error");
    this.param = opts.param ?? null;
    this.code = opts.code ?? null;
  }

  body(): ApiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** 400: the request is wrong (a field, the JSON, the size); `param` names the field. */
export const badRequest = (message: string, param: string | null = null, code: string | null = null) =>
  new ApiError(400, message, { param, code });

/** 401 as OpenAI answers it; the key that was sent is never repeated back. */
export const invalidApiKey = (given: boolean) =>
  new ApiError(
    401,
    given
      ? "Incorrect API key provided."
      : "You didn't provide an API key. Send it in an Authorization header: Bearer YOUR_KEY.",
    { code: given ? "invalid_api_key" : null },
  );

/** 400 for a model the server does not serve, naming those it does. */
export const unknownModel = (model: string, served: readonly string[]) =>
  new ApiError(400, `The model '${model}' does not exist on this server (it serves: ${served.join(", ")}).`, {
    param: "model",
    code: "model_not_found",
  });
