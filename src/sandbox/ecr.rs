//! An embedded ECR API endpoint for the sandbox (work in progress).
