"""ddpayne.pipeline"""
