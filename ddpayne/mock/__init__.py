"""ddpayne.mock"""
