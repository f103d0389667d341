/* relay — one CGI request (this process's environment, the body on stdin)
 * forwarded to a FastCGI responder as request 1, and its STDOUT / STDERR
 * records copied to stdout / stderr as they arrive (no buffering: a stream
 * stays live). libc only. */
#ifndef AIPROXY_RELAY_H
#define AIPROXY_RELAY_H

/* Writes a whole CGI response with an OpenAI-shaped error body to stdout:
 * `Status: <status> <reason>`, application/json, {"error":{message, type,
 * param:null, code:null}}. msg and type must need no JSON escaping (the
 * callers pass constants). Only before any other output. */
void relay_error(int status, const char *reason, const char *type, const char *msg);

/* Runs the request over the connected socket `sock` (owned by the caller):
 * BEGIN_REQUEST, the environment as PARAMS, CONTENT_LENGTH bytes of stdin
 * (or up to EOF without one) as STDIN, while copying the answer out. A pool
 * that closes before END_REQUEST with nothing written yet gets a 502 in
 * OpenAI's shape; a web server that stops taking the answer (the client
 * left) ends it quietly. Returns the process's exit code. */
int relay_run(int sock);

#endif
