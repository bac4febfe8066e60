import { HeartwireError } from '@heartwire/core';

/**
 * A request turned away before its job started, with the HTTP status it is
 * answered with; the body is one `error` event carrying `code`.
 */
export class HttpRefusal extends HeartwireError {
  constructor(
    readonly status: number,
    code: 'HW_ERR_BAD_PAYLOAD' | 'HW_ERR_PAYLOAD_TOO_LARGE' | 'HW_ERR_UNKNOWN_METHOD' | 'HW_ERR_SERVER_CLOSING',
    message: string,
  ) {
    super(code, message);
    this.name = 'HttpRefusal';
  }
}
