"""ddpayne.prepare"""
