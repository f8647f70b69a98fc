/**
 * The paths of the email processor service's REST model (`/rest/v1/model/email/…`, its
 * collection names capitalised), answered as aliases of ours so that its clients and scripts
 * work unchanged. Only the prefix lives here; each route names its alias next to its own path.
 */
export const REST_MODEL = '/rest/v1/model/email';
