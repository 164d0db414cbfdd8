package jupyter

import (
	"context"
	"net/http"
)

// Helpers used only by this package's tests.

// listKernels sends GET /api/kernels once and returns every kernel the
// server runs, including kernels other clients started.
func (c *Client) listKernels(ctx context.Context) ([]kernel, error) {
	var ks []kernel
	if err := c.do(ctx, http.MethodGet, "/api/kernels", nil, &ks); err != nil {
		return nil, err
	}
	return ks, nil
}

// getKernel sends GET /api/kernels/{id} once. A kernel the server does
// not know gives a *StatusError with StatusCode 404.
func (c *Client) getKernel(ctx context.Context, kernelID string) (kernel, error) {
	p, err := kernelPath(kernelID)
	if err != nil {
		return kernel{}, err
	}
	var k kernel
	err = c.do(ctx, http.MethodGet, p, nil, &k)
	return k, err
}

// text returns the text/plain form of the main result (the value of the
// cell's last expression, from execute_result), or "" when the cell had
// none. It does not fall back to display_data results or stdout.
func (e *Execution) text() string {
	if e == nil {
		return ""
	}
	for _, r := range e.Results {
		if r.IsMainResult {
			return r.Text
		}
	}
	return ""
}
